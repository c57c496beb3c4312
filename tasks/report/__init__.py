"""Reports people read: one self-contained HTML page per run, per drift check, and an index of runs.

Pure rendering: ``build`` turns already-read run data into views, ``render`` turns views into
HTML with Jinja2 templates (inline CSS, inline SVG charts from matplotlib, a tiny sort script).
Reading run folders and writing files is ``driftloop.flows.report``'s job.
"""

from driftloop.tasks.report.build import RunData, drift_page_view, index_view, run_view
from driftloop.tasks.report.compare import Thresholds
from driftloop.tasks.report.render import png_data_uri, render
from driftloop.tasks.report.verdict import RunStages

__all__ = ["RunData", "RunStages", "Thresholds", "drift_page_view", "index_view", "png_data_uri", "render", "run_view"]
