"""Uploads: each session's files on disk (session_files), the memory and size budgets that refuse a
file at arrival (budget), and the analysis of photos and videos (analysis, no Streamlit)."""
