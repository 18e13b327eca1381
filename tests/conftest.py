from __future__ import annotations

import pytest

from tests.project import ProjectCopy


@pytest.fixture
def project(tmp_path) -> ProjectCopy:
    return ProjectCopy(tmp_path)
