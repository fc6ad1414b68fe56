"""``bonzo-bulk serve`` on a PostgreSQL store through a role that may only read: every page answers, and the one
change it offers is refused by the database, said as a store error (503), not a crash."""

from __future__ import annotations

import httpx
import psycopg
from builders import RunSpec, begin_run_of, build_run
from pgcluster import PASSWORD, PgCluster

from bonzo_bulk.serve.server import ServeServer
from bonzo_bulk.store import RunStore

TOKEN = "read-only-token-0123456789"


def test_serve_reads_a_postgresql_store_with_a_read_only_role(pg_cluster: PgCluster) -> None:
    owner_url = pg_cluster.new_database()
    result = build_run(RunSpec(records=12, run_id="r-ro"))
    with RunStore(owner_url) as store:
        begin_run_of(store, result)
        store.finish_run(result)
    database = owner_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_cluster.url(database, password=PASSWORD), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE reader_{database} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO reader_{database}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader_{database}")
    reader_url = owner_url.replace("://bonzo@", f"://reader_{database}@")
    with (
        ServeServer(reader_url, token=TOKEN) as server,
        httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as client,
    ):
        for path in ("/", "/api/overview", "/runs/r-ro", "/runs/r-ro/dashboard", "/runs/r-ro/export.csv", "/metrics"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
        assert [g["verdict"] for g in client.get("/api/overview").json()["groups"]] == ["passed"]
        refused = client.post("/api/runs/r-ro/baseline")
        assert refused.status_code == 503 and "permission denied" in refused.json()["detail"]
