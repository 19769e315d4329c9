"""Agents and pipelines: state machines of steps, checkpointed in Postgres, executed by Celery."""
