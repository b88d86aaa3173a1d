"""The status protocols a catalog entry may name, and the parser of each."""

from __future__ import annotations

from collections.abc import Callable

from jobyard.schemas.events import Parsed, parse_status_lines
from jobyard.schemas.tao_status import parse_tao_lines

PARSERS: dict[str, Callable[[bytes, int], Parsed]] = {
    "jobyard": parse_status_lines,  # JSON lines in JY_STATUS_FILE (workloads/README.md)
    "tao": parse_tao_lines,  # TAO Toolkit's status.json
}


def parse_lines(protocol: str, data: bytes, first_line: int) -> Parsed:
    """Events from the status file of a workload that speaks ``protocol`` (the catalog
    entry's ``status_protocol``)."""
    parser = PARSERS.get(protocol)
    if parser is None:
        raise ValueError(f"unknown status protocol {protocol!r} (known: {', '.join(PARSERS)})")
    return parser(data, first_line)
