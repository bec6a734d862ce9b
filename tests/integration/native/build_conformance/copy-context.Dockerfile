# COPY from the context: folders (contents copied), files with their modes, symbolic links kept
# as links, hard links, xattrs, an empty folder, globs, renames, several sources, a named link.
FROM scratch
COPY files /files
COPY links /links
COPY hard /hard
COPY xattr /xattr
COPY empty-dir /empty
COPY glob/*.txt /glob/
COPY glob/t* /glob-t/
COPY files/plain.txt /renamed.txt
COPY files/plain.txt files/exec.sh /multi/
COPY links/rel /followed
COPY links/dir-link /followed-dir
COPY files/ /slash/
COPY ["files/plain.txt", "/json form/"]
COPY tree/a/b/c.txt /new/parents/
COPY files/plain.txt /files/exec.sh
