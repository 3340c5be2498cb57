# The front door of the workbook. `make help` lists the targets. The student's targets (setup,
# lab, grade, doctor, images, clean, cluster) are the class repository's own Makefile, included
# here; this file adds the instructor's: test, bench, release, grade-all.
EXTRAS       := app,test,cloud,load
REQUIREMENTS := pyproject.toml environments/app/requirements.txt tests/requirements.txt \
                environments/cloud/requirements.txt environments/load/requirements.txt
include environments/release/Makefile

.PHONY: test bench release grade-all

test: setup images ## run the whole test suite (unit, notebooks, grading honesty)
	$(BIN)/labkit build --check
	$(BIN)/pytest tests environments/app/tests $(PYTEST_ARGS)

bench: setup images ## measure image sizes, start time, latency, notebook and class grading times
	$(BIN)/python -m tests.bench

release: setup ## write the repository a class clones, without the answers: make release OUT=../class-repo
	$(BIN)/labkit release $(OUT)

grade-all: setup ## grade a class: make grade-all SUBMISSIONS=folder/ [LAB=01] (writes grades/)
	$(BIN)/labkit grade-all $(SUBMISSIONS) --out grades $(if $(filter command line,$(origin LAB)),--lab $(LAB)) $(GRADE_ARGS)
