"""Covering indexes for facet counts (domain/facets.py): each facet query reads one narrow index instead of
the wide rows (a study's title and sources, a reference's abstract). No table or row changes.

- study (the six single-valued classification/status columns): the grouped count of all six is one scan of
  this index, in its order (no sort);
- study (the three `results_*` flags): `results_in`;
- registration (registry, study_id): `registry` counts distinct studies per registry in index order;
- study_reference (reference_id, role, study_id): over the whole register, `reference_type` and
  `has_results` walk the references of a value (their own index) and find each one's reporting studies
  here, never reading the wide reference rows.
"""

INDEXES = (  # name, table, columns (models.py declares the same column sets in their Meta)
    ("study_classifications", "study", ("study_type", "study_aim", "study_design", "intervention_assignment",
               "recruitment_status", "phase")),
    ("study_results_flags", "study", ("results_registry", "results_article", "results_preprint")),
    ("registration_registry_study_id", "registration", ("registry", "study_id")),
    ("study_reference_reference_id_role_study_id", "study_reference", ("reference_id", "role", "study_id")),
)


def upgrade(db, migrator) -> None:
    for name, table, columns in INDEXES:
        listed = ", ".join(f'"{c}"' for c in columns)
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({listed})')
