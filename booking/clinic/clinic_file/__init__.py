"""The clinic file: one TOML file that says who the clinic is, what patients can book and who
works when. docs/clinic-file.md describes every key.

- schema.py: what the file may say, as pydantic models shaped like the file;
- reading.py: text to a checked ClinicSpec, or every problem at once (problems.py words them);
- apply.py: the database made to say what the file says, each change reported;
- export.py: the database written back as a file.

Reading never stops at the first mistake: every problem is reported at once, one per line,
each naming the file, the key and what is wrong, so the clinic fixes its file in one go.
Writing never commits: the caller commits once, so a file is loaded whole or not at all.
"""

from pathlib import Path

from booking.clinic.clinic_file.apply import apply_clinic
from booking.clinic.clinic_file.export import clinic_file_text, current_clinic_spec, export_clinic
from booking.clinic.clinic_file.problems import ClinicFileError, Problem
from booking.clinic.clinic_file.reading import parse_clinic_file, read_clinic_file
from booking.clinic.clinic_file.schema import (
    ClinicDetails,
    ClinicSpec,
    ServiceSpec,
    TherapistSpec,
)

DEMO_CLINIC_FILE = Path(__file__).parent.parent / "demo_clinic.toml"

__all__ = [
    "DEMO_CLINIC_FILE",
    "ClinicDetails",
    "ClinicFileError",
    "ClinicSpec",
    "Problem",
    "ServiceSpec",
    "TherapistSpec",
    "apply_clinic",
    "clinic_file_text",
    "current_clinic_spec",
    "export_clinic",
    "parse_clinic_file",
    "read_clinic_file",
]
