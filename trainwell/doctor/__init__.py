"""The doctor: `doctor()` (trainwell doctor), the checks before a long run, in preflight.py; `diagnose()`
(trainwell diagnose RUN), the triage of a finished or failed run directory, in diagnosis.py; its prescriptions
tried on a short run before they are printed (`try_prescriptions`), in trial.py."""
from trainwell.doctor.diagnosis import diagnose
from trainwell.doctor.findings import CODES, Finding, Report, train_command
from trainwell.doctor.preflight import doctor
from trainwell.doctor.trial import try_prescriptions

__all__ = ["CODES", "Finding", "Report", "diagnose", "doctor", "train_command", "try_prescriptions"]
