"""Registry test helpers: a tiny valid district as CSV files, line editing, table checksums.

Imported by the tests (``from registry_helpers import ...``) and by conftest.py for fixtures."""

from __future__ import annotations

from pathlib import Path

import asyncpg

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
MATRIX_FILE = Path(__file__).resolve().parents[2] / "data" / "matrix.yaml"

REGISTRY_TABLES = (
    "domains",
    "townships",
    "villages",
    "departments",
    "leaders",
    "vendors",
    "maintainers",
    "sites",
    "site_contacts",
    "devices",
    "matrix_rules",
)

# A minimal district that imports without errors or warnings (its landline duty rooms have a
# duty mobile beside: a landline-only one is a warning). Line numbers matter to the
# tests: header = line 1, first row = line 2.
TINY: dict[str, str] = {
    "domains.csv": """name,name_zh,default_interval_s
gas,燃气,60
fire,消防,300
""",
    "townships.csv": """id,name,kind,duty_name,duty_phone,duty_mobile
T1,临江街道,街道,临江街道应急值班室,0571-86010001,13957100001
""",
    "villages.csv": """id,township_id,name,kind,grid_member,grid_member_phone
V1,T1,江滨社区,社区,王芳,13900000101
""",
    "departments.csv": """id,name,duty_name,duty_phone,duty_mobile
zj,区住建局,值班室,0571-86030001,13957200001
yj,区应急管理局,值班室,13900000102,
""",
    "leaders.csv": """id,name,title,phone
L1,张伟,副区长,13900000103
""",
    "vendors.csv": """id,name,adapter,mqtt_username
acme-gas,安可燃气,gasjson,acme-gas
firenet,消防网联,gbt26875,firenet
""",
    "sites.csv": """id,name,address,industry,site_class,township_id,village_id,lon,lat,gas_alarm_required,critical,covering_leader_id
S1,老王面馆,江滨路1号,餐饮,restaurant,T1,V1,120.15,30.25,true,false,
S2,江滨养老院,江滨路2号,养老,elderly_home,T1,V1,120.16,30.26,true,true,L1
""",
    "site_contacts.csv": """site_id,name,role,phone
S1,王五,主要负责人,13900000104
S2,李四,主要负责人,13900000105
""",
    "devices.csv": """id,vendor_id,model,domain,site_id,expected_interval_s,installed_on,parent_id,active
gas-1,acme-gas,AG-GD200,gas,S1,60,2023-05-01,,true
fpnl-1,firenet,FN-JB5000,fire,S2,300,2022-01-10,,true
smk-1,firenet,FN-JTY-GD,fire,S2,,2022-01-10,fpnl-1,true
""",
    "matrix.csv": """id,domain,department_ids,leader_id,committee,industries,note
gas,gas,zj,L1,城市运行安全专委会,,
fire,fire,yj,L1,消防安全专委会,,
""",
}


def write_tiny(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in TINY.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def set_line(path: Path, line: int, text: str | None) -> None:
    """Replace (or, with None, delete) 1-based ``line`` of a file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def table_checksums(dsn: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row of every registry table (plus the audit count)."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for t in (*REGISTRY_TABLES, "registry_audit"):
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM {t} x"
            )
            out[t] = (row["n"], row["h"])
        return out
    finally:
        await conn.close()
