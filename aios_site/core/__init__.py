"""The shared core every app may import, and which imports no app: the error hierarchy,
who acted (`Actor`), canonical-JSON hashing and the one lease that every claimed piece of
work (a run's slice, a proposal's commit, a post's publishing, an import's chunk, a batch of
webhook events) is done under.

Layers above plug in through the seams here (`lease.LeaseKind` registrations, signals);
nothing here reaches up into `agents`, `approvals`, `memory` or `catalog`.
"""
