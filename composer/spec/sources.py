"""The files a project was read from, so that any stage can point at the YAML behind a path."""

from __future__ import annotations

from composer.errors import SourceLocation
from composer.spec.modelpath import PathKey
from composer.spec.yamlio import Document


class Sources:
    """Every document read so far, newest last; later documents win when locating a path."""

    def __init__(self) -> None:
        self.documents: list[Document] = []

    def add(self, document: Document) -> None:
        self.documents.append(document)

    def locate(self, path: PathKey) -> SourceLocation | None:
        """The most specific known position of ``path`` (or of its nearest ancestor)."""
        for end in range(len(path), 0, -1):
            prefix = path[:end]
            for document in reversed(self.documents):
                position = document.positions.get(prefix)
                if position is not None:
                    return SourceLocation(document.filename, position[0], position[1])
        if self.documents:
            return SourceLocation(self.documents[-1].filename)
        return None
