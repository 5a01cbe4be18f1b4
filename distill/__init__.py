"""Models and training: the students, the Restormer teacher, checkpoints, distillation."""

from distill.checkpoint import DEFAULT_MODEL, load_student, save_student
from distill.errors import KdcamError
from distill.restormer import Restormer
from distill.students import STUDENTS, create_student

__all__ = ["DEFAULT_MODEL", "STUDENTS", "KdcamError", "Restormer", "create_student", "load_student", "save_student"]
