"""Attribution: a teacher scores every input word by its influence on the answer; the top-k become rationales."""

from tokendistill.attribution import controls  # noqa: F401  (registers the control methods)
from tokendistill.attribution.extract import extract
from tokendistill.attribution.methods import METHODS, MethodOptions
from tokendistill.attribution.teacher import Teacher, TeacherBatch

__all__ = ["METHODS", "MethodOptions", "Teacher", "TeacherBatch", "extract"]
