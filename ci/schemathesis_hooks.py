"""What schemathesis cannot make by itself (ci/schemathesis.sh loads it with SCHEMATHESIS_HOOKS):
`POST /v1/uploads` takes an app folder as tar.gz. Its cases are whole folders of a few files, and
bytes that are no tar.gz at all."""

import gzip
import io
import tarfile

import schemathesis
from hypothesis import strategies as st


def _folder(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


_names = st.sampled_from(["slipway.toml", "version.txt", "bin/run", "static/a/b.css"])
schemathesis.openapi.media_type(
    "application/gzip",
    st.one_of(
        st.builds(_folder, st.dictionaries(_names, st.binary(max_size=64), max_size=4)),
        st.binary(max_size=256),
    ),
)
