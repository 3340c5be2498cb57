"""The grading times and peak memory that the README and the overviews quote are the ones the
benchmark last recorded (docs/lab_figures.json): `python -m tests.bench labs` rewrites them."""

import nbformat
import pytest

from labkit.core import paths

import quoted_figures


@pytest.mark.parametrize(("seconds", "said"), [(4, "10 seconds"), (28, "30 seconds"), (54, "50 seconds"),
                                                (58, "a minute"), (74, "a minute"), (81, "80 seconds"),
                                                (104, "100 seconds"), (126, "2 minutes"), (176, "3 minutes")])
def test_about(seconds, said):
    assert quoted_figures.about(seconds) == said


def test_every_lab_is_recorded():
    record = quoted_figures.read()
    labs = sorted(p.name[:2] for p in paths.lab_notebooks(paths.SOLUTIONS))
    for key, _ in ((k, t) for t, k in quoted_figures.TABLE_ROWS):
        assert sorted(record[key]) == labs, key
        assert all(value > 0 for value in record[key].values()), key


@pytest.mark.parametrize("solution", paths.lab_notebooks(paths.SOLUTIONS), ids=lambda p: p.name[:2])
def test_overview_says_the_recorded_grading_time(solution):
    overview = nbformat.read(solution, as_version=4).cells[0].source
    seconds = quoted_figures.read()["grading_seconds"][solution.name[:2]]
    assert quoted_figures.overview_with(overview, seconds) == overview, \
        f"{solution.name}'s overview does not say 'in about {quoted_figures.about(seconds)}' ({seconds} s recorded)"


def test_readme_table_is_the_record():
    readme = quoted_figures.README.read_text()
    assert quoted_figures.readme_with(readme, quoted_figures.read()) == readme


def test_a_changed_figure_is_noticed():
    record = quoted_figures.read()
    readme = quoted_figures.README.read_text()
    record["peak_memory_mb"]["07"] += 1
    assert quoted_figures.readme_with(readme, record) != readme
    overview = "| Time | about 45 minutes; the grader runs the finished notebook in about 80 seconds (`make bench`) |"
    assert quoted_figures.overview_with(overview, 130) == overview.replace("80 seconds", "2 minutes")
    with pytest.raises(ValueError):
        quoted_figures.overview_with("| Time | about 45 minutes |", 80)
