"""The course itself: what each notebook cell is (cells), checks and the score table (checks),
labs/ from solutions/ (build), a lab's names, set-up and cleanup (lab), what each lab needs
(syllabus), and grading (grade, with the two-kernel engine grade_engine and the bridge to
the student's kernel, student). The top layer: it may import every other."""
