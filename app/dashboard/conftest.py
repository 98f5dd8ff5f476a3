"""The suite runs doctests over ``app/``: Streamlit scripts are run by
Streamlit (and by AppTest in ``tests/app``), never imported as modules."""

collect_ignore = ["main.py"]
collect_ignore_glob = ["pages/*.py"]
