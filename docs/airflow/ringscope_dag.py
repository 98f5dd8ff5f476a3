"""Airflow DAGs for ringscope: nightly flagging + monitoring, weekly detect + train + promote.

Copy into your Airflow ``dags/`` folder and set the Airflow Variables
``ringscope_store_args`` (e.g. ``--store /srv/ringscope/store`` or
``--neo4j bolt://127.0.0.1:7687``), ``ringscope_incoming`` (where tonight's
export lands, one folder per day) and ``ringscope_out``. Both DAGs use the
``ringscope`` pool: create it with one slot, so a weekly run and a nightly
run never overlap (the store's own write lock would make the second wait).
A ``monitor`` exit code 1 ("act") fails its task, which is the alert.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

STORE = "{{ var.value.ringscope_store_args }}"
OUT = "{{ var.value.ringscope_out }}/{{ ds }}"
DEFAULTS = {"retries": 1, "retry_delay": timedelta(minutes=10), "pool": "ringscope"}

with DAG(
    "ringscope_nightly",
    schedule="30 1 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["ringscope"],
) as nightly:
    flag = BashOperator(
        task_id="flag",
        bash_command=f"mkdir -p {OUT} && ringscope flag {{{{ var.value.ringscope_incoming }}}}/{{{{ ds }}}} {STORE} "
        f"--out {OUT}/flags.csv --rejects {OUT}/rejects.csv --quiet",
    )
    monitor = BashOperator(task_id="monitor", bash_command=f"ringscope monitor {STORE} --out {OUT}/monitoring --quiet")
    flag >> monitor

with DAG(
    "ringscope_weekly",
    schedule="0 3 * * 0",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["ringscope"],
) as weekly:
    detect = BashOperator(task_id="detect", bash_command=f"ringscope detect {STORE} --quiet")
    train = BashOperator(task_id="train", bash_command=f"ringscope train {STORE} --promote auto --quiet")
    check = BashOperator(
        task_id="monitor", bash_command=f"mkdir -p {OUT} && ringscope monitor {STORE} --out {OUT}/monitoring --quiet"
    )
    detect >> train >> check
