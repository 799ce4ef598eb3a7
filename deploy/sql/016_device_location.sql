-- Where a device is (issue 13): every alarm text names the device by its installation location
-- (安装位置, e.g. "后厨灶台上方", "2号楼1单元 3号梯", "3F 东侧走廊"), a lift also by its
-- 特种设备注册代码 (the 20-digit code on its 使用标志). Empty: the registry does not know yet;
-- texts then fall back to the model and id (alerting/compose.py, where()).
ALTER TABLE devices ADD COLUMN IF NOT EXISTS location text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS reg_code text NOT NULL DEFAULT '';
