"""Images for the native backend: references, the content-addressed store, the registry client,
layer unpacking and pulls. Import the submodules directly; nothing heavy is imported here."""
