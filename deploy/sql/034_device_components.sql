-- A fire panel's components (部件, issue 18): the 点位表 a vendor's engineer gives for a 火灾报警控制器
-- or 用户信息传输装置 (one device of the registry). A component's address is GB/T 26875.3-2011 §8.2's
-- 部件地址 as hazmon reads it (ingest/adapters/gbt26875): system type, system address, component
-- type and the u32 address as loop 回路 (high half) and point 点位 (low half); description is its
-- 位置说明 (the panel's 部件说明). Optional: a device without rows here is not checked; a device with
-- rows gets an `unregistered_part` dead letter for a frame naming another address, the record
-- itself still processed (a fire alarm still alarms). Loaded by `hazmon registry import`
-- (components.csv, or `components:` inline under a device in YAML); a device's list is replaced
-- as a whole by the list an import gives for it.
CREATE TABLE IF NOT EXISTS device_components (
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    sys_type    smallint NOT NULL CHECK (sys_type BETWEEN 0 AND 255),
    sys_addr    smallint NOT NULL CHECK (sys_addr BETWEEN 0 AND 255),
    comp_type   smallint NOT NULL CHECK (comp_type BETWEEN 0 AND 255),
    loop        integer NOT NULL CHECK (loop BETWEEN 0 AND 65535),
    point       integer NOT NULL CHECK (point BETWEEN 0 AND 65535),
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (device_id, sys_type, sys_addr, comp_type, loop, point)
);
