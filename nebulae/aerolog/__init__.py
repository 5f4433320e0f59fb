"""aerolog: training dashboards (DashBoard) and model summaries (Inspector)."""
