"""Eval sets: labelled customer messages to measure the agents against."""
