"""Content ops: a brief → research → outline → drafts per channel and language → a person's
review (their edits kept as versions, and remembered as examples) → a schedule → publishing
at the time, once, through the workspace's `publish` webhook endpoint.

    formats.py    what each channel takes (fields and limits)
    services.py   briefs, ideation, publishing due posts (writes)
    selectors.py  briefs with their drafts and posts, the calendar (reads)
    tools.py      what the pipeline reads and records, journaled
    pipeline.py   `content.post`, the content writer's pipeline
    effectors.py  `content.accept_draft`, `content.schedule_post`
    schemas.py, api.py, views.py
"""
