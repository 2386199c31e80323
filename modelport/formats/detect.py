"""Content sniffing: what a path really is, asked of each registered format's sniffer.

Only the checks that belong to no format live here (an empty file, an HTML error page saved under
a model's name, a damaged zip); each format recognises its own content (``Format.sniff``).
Nothing here imports a framework; the Session of the detected format does the full read and
reports truncation or corruption.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import FORMATS, Probe

# A Python import path and a callable in it, e.g. "mypkg.models:build_resnet".
FACTORY_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def sniff(path: Path) -> tuple[str | None, str]:
    """Return (format name or None, a short description of the content for messages)."""
    probe = Probe(path)
    if not probe.is_dir:
        head = probe.head
        if not head:
            return None, "an empty file"
        if re.match(rb"<[A-Za-z!?]", head.lstrip()):  # a tag; a binary file may start with the byte '<' too
            # Only XML model formats (OpenVINO IR) may claim it: to the text sniffers of the others
            # (Caffe's prototxt) a saved error page must stay an error page.
            for fmt in FORMATS.values():
                if ".xml" in fmt.suffixes and (description := fmt.sniff(probe)):
                    return fmt.name, description
            return None, "an HTML/XML page"
    for fmt in FORMATS.values():
        description = fmt.sniff(probe)
        if description:
            return fmt.name, description
    return None, _describe_unknown(probe)


def _describe_unknown(probe: Probe) -> str:
    if probe.is_dir:
        return "a folder that holds no model modelport recognises"
    if probe.head.startswith(b"PK"):
        return "a zip archive of unknown content" if probe.zip_names is not None else "a damaged or truncated zip archive"
    return "a text file" if is_text(probe.head) else "unrecognised binary data"


def is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
