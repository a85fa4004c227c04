"""Results: discovery (what a folder holds), summary (the figures, at the level of rows and of seeds) and tables
(the text every front end prints); the statistics are tokendistill.statistics."""

from tokendistill.results.discovery import (
    CONTROL_METHODS,
    FACTORS,
    collect,
    declarations,
    marker_factor,
    planned_seeds,
)
from tokendistill.results.summary import cell_label, compare, summarize, teacher_accuracy, verdict
from tokendistill.results.tables import (
    CLAIMS_HEADING,
    CSV_COLUMNS,
    FORMAT_HEADER,
    TABLE_HEADERS,
    TABLE_LEGEND,
    ResultsConfig,
    claims_markdown,
    render_results,
    results_command,
    results_markdown,
    seed_table,
    table,
    table_details,
    teacher_text,
    teacher_texts,
    verdict_markdown,
    write_results,
)

__all__ = ["CLAIMS_HEADING", "CONTROL_METHODS", "CSV_COLUMNS", "FACTORS", "FORMAT_HEADER", "TABLE_HEADERS", "TABLE_LEGEND", "ResultsConfig", "cell_label", "claims_markdown",
           "collect", "compare", "declarations", "marker_factor", "planned_seeds", "render_results", "results_command", "results_markdown", "seed_table",
           "summarize", "table", "table_details", "teacher_accuracy", "teacher_text", "teacher_texts", "verdict", "verdict_markdown", "write_results"]
