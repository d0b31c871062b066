"""Split the Markdown into chunks of at most 600 tokens for indexing.

Token counts are estimated conservatively without a tokenizer dependency: one token per 3
characters or per word, whichever is larger (real tokenizers average about 4 characters a token
on this kind of text), so a chunk under the estimate is under the limit for real.
"""

from __future__ import annotations

import math

MAX_TOKENS = 600


def count_tokens(text: str) -> int:
    return max(math.ceil(len(text) / 3), len(text.split()))


def _pieces(markdown: str) -> list[str]:
    """Sections (a heading and what follows), each split into paragraphs or table rows."""
    sections: list[list[str]] = []
    for line in markdown.splitlines():
        if line.startswith("#") or not sections:
            sections.append([])
        sections[-1].append(line)
    return ["\n".join(s).strip() for s in sections if "\n".join(s).strip()]


def chunk_markdown(markdown: str, max_tokens: int = MAX_TOKENS) -> list[str]:
    chunks: list[str] = []
    current = ""
    for section in _pieces(markdown):
        candidate = f"{current}\n\n{section}" if current else section
        if count_tokens(candidate) <= max_tokens:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = ""
        if count_tokens(section) <= max_tokens:
            current = section
            continue
        chunks.extend(_split_long(section, max_tokens))
    if current:
        chunks.append(current)
    return chunks


def _split_long(section: str, max_tokens: int) -> list[str]:
    """A section too long for one chunk: split by lines, repeating its heading and table header."""
    lines = section.splitlines()
    heading = lines[0] if lines and lines[0].startswith("#") else ""
    header = [ln for ln in lines[:6] if ln.startswith("|")][:2]
    prefix = "\n".join(filter(None, [heading, *header]))
    out, current = [], prefix
    for line in lines:
        if line == heading or line in header:
            continue
        candidate = f"{current}\n{line}" if current else line
        if count_tokens(candidate) > max_tokens and current != prefix:
            out.append(current)
            candidate = f"{prefix}\n{line}" if prefix else line
        if count_tokens(candidate) > max_tokens:  # one enormous line: hard split by characters
            step = max_tokens * 3 - len(prefix) - 1
            for i in range(0, len(line), step):
                out.append(f"{prefix}\n{line[i : i + step]}" if prefix else line[i : i + step])
            candidate = prefix
        current = candidate
    if current and current != prefix:
        out.append(current)
    return out
