"""The contract between the planner and the backends, and between the engine and its callers.

Both sides depend on it and neither owns it (as docker/compose keeps ``pkg/api``):

- ``backend``: the Backend protocol, what it is handed (ContainerSpec, BuildSpec,
  NetworkAttachment, ExecSpec...) and what it answers (ContainerState, LogLine, EngineEvent...);
- ``services``: the optional protocol of a backend that deploys services rather than containers;
- ``observed``: the snapshot a backend takes of a project (ObservedState), which the planner
  compares with the desired project;
- ``plan``: the operations the planner decides and the executor carries out (Plan), and the
  Outcome the engine returns;
- ``options``: what each command was asked to do (UpOptions, RunOptions, ...).

The planner and the backends import this package and never each other; the CLI and the library
(composer.api) import it, the engine and the spec. It imports nothing of composer's but the
spec's models and the base modules (errors, labels, events...; tests/unit/test_layering.py holds
it to that), and nothing heavy: the CLI's start-up imports parts of it. Each module is imported
by name; this one re-exports nothing.
"""
