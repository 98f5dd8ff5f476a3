"""The investigator dashboard (Streamlit): ``ringscope dashboard`` starts it.

``main.py`` only routes; pages live in ``pages/``; the work is done by plain
functions in ``services.py``, ``cases.py``, ``cypher.py`` (shared with the CLI
and the bench); ``launch.py`` starts the server on loopback only.
"""
