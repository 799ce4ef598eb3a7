-- 辖区边界 (issue 15 item 6): the boundary of each township (镇/街道) and, optionally, village
-- (村/社区) as a GeoJSON geometry (Polygon or MultiPolygon, WGS 84 lon/lat), loaded by
-- `hazmon registry import` from boundaries.geojson beside the registry's CSVs (validated there:
-- closed rings, known ids, every site inside its own township). A file given to an import
-- replaces every row here; the console's map (GET /api/map) draws them, no map tiles needed.
-- The bounding box is kept beside the geometry for the map's extent.
CREATE TABLE IF NOT EXISTS area_boundaries (
    level       text NOT NULL CHECK (level IN ('township', 'village')),
    area_id     text NOT NULL,
    township_id text NOT NULL REFERENCES townships (id) ON DELETE CASCADE,
    village_id  text REFERENCES villages (id) ON DELETE CASCADE,
    geometry    jsonb NOT NULL CHECK (geometry->>'type' IN ('Polygon', 'MultiPolygon')),
    min_lon     double precision NOT NULL,
    min_lat     double precision NOT NULL,
    max_lon     double precision NOT NULL,
    max_lat     double precision NOT NULL,
    PRIMARY KEY (level, area_id),
    CHECK ((level = 'township' AND area_id = township_id AND village_id IS NULL)
        OR (level = 'village' AND area_id = village_id))
);
CREATE INDEX IF NOT EXISTS area_boundaries_township ON area_boundaries (township_id);
