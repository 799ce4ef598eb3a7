-- 现场照片 and 到场签到 (issue 14, the phone pages): the photos a grid member, a business or a 维保单位
-- takes on site as evidence of 反馈 / 整改, and where they checked in.
-- attachments: one re-encoded image each (console/attachments.py: type sniffed from the bytes,
-- at most 10 MB raw and 40 MP, decoded and re-encoded by Pillow to JPEG, EXIF and GPS dropped,
-- orientation applied). It belongs to exactly one alert or one hazard, and only a role that may
-- see that alert or hazard may upload or read it. sha256 is of the stored bytes, so a copy
-- handed on can be checked against the ledger.
CREATE TABLE IF NOT EXISTS attachments (
    id             text PRIMARY KEY,                 -- att-<22 url-safe characters>
    alert_id       text REFERENCES alerts(id) ON DELETE CASCADE,
    hazard_id      text REFERENCES hazards(id) ON DELETE CASCADE,
    uploaded_by    text NOT NULL,                    -- the console actor (role:username)
    uploaded_at    timestamptz NOT NULL,
    content_type   text NOT NULL DEFAULT 'image/jpeg',
    bytes          integer NOT NULL CHECK (bytes > 0),
    width          integer NOT NULL CHECK (width > 0),
    height         integer NOT NULL CHECK (height > 0),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source_format  text NOT NULL,                    -- JPEG / PNG / WEBP, as sniffed from the bytes
    source_bytes   integer NOT NULL,
    data           bytea NOT NULL,
    CHECK ((alert_id IS NULL) <> (hazard_id IS NULL)),
    CHECK (octet_length(data) = bytes)
);
CREATE INDEX IF NOT EXISTS attachments_alert ON attachments (alert_id, uploaded_at) WHERE alert_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS attachments_hazard ON attachments (hazard_id, uploaded_at) WHERE hazard_id IS NOT NULL;

-- 到场签到 at an alarm (a grid member's check-in, a 维保单位's 维保到场): where the browser's
-- geolocation put them, when the person granted it (lat/lon/accuracy NULL: refused or unavailable).
CREATE TABLE IF NOT EXISTS field_checkins (
    id          bigserial PRIMARY KEY,
    alert_id    text NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('checkin', 'arrival')),
    lat         double precision CHECK (lat BETWEEN -90 AND 90),
    lon         double precision CHECK (lon BETWEEN -180 AND 180),
    accuracy_m  double precision CHECK (accuracy_m >= 0),
    CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE INDEX IF NOT EXISTS field_checkins_alert ON field_checkins (alert_id, at);
