//! The host's facts for `/v1/agent/host`, in the shape Consul's `debug.HostInfo` has (gopsutil's
//! memory, CPU, host and disk records, with their lower-camel JSON names), read from `/proc`,
//! `uname` and `statvfs` on Linux.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything `/v1/agent/host` reports. A part that can't be read is `null`, and counted in
/// `Errors` (Go renders each `error` value as `{}`).
pub fn collect(data_dir: Option<&Path>) -> Value {
    let mut errors = Vec::new();
    let mut part = |v: Option<Value>| {
        if v.is_none() {
            errors.push(json!({}));
        }
        v.unwrap_or(Value::Null)
    };
    let memory = part(memory());
    let cpu = part(cpus());
    let host = part(host());
    let disk = part(data_dir.and_then(disk));
    let collected = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    json!({
        "Memory": memory,
        "CPU": cpu,
        "Host": host,
        "Disk": disk,
        "CollectionTime": collected,
        "Errors": errors,
    })
}

/// The sizes a `/proc` file such as `meminfo` or `self/status` lists as `Name: <n> kB`, in
/// bytes, by name; its other lines are passed over.
pub fn proc_sizes(path: &str) -> Option<HashMap<String, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let sizes = text.lines().filter_map(|line| {
        let (name, rest) = line.split_once(':')?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some((name.to_string(), kb * 1024))
    });
    Some(sizes.collect())
}

/// `part` as a percentage of `whole`, 0 when `whole` is.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn memory() -> Option<Value> {
    let m = proc_sizes("/proc/meminfo")?;
    let get = |k: &str| m.get(k).copied().unwrap_or(0);
    let total = get("MemTotal");
    let available = get("MemAvailable");
    let used = total.saturating_sub(available);
    Some(json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": percent(used, total),
        "free": get("MemFree"),
        "buffers": get("Buffers"),
        "cached": get("Cached"),
        "shared": get("Shmem"),
        "swapTotal": get("SwapTotal"),
        "swapFree": get("SwapFree"),
    }))
}

fn cpus() -> Option<Value> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let number = |name: &str| {
            field(name)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        out.push(json!({
            "cpu": number("processor") as i64,
            "vendorId": field("vendor_id").unwrap_or_default(),
            "family": field("cpu family").unwrap_or_default(),
            "model": field("model").unwrap_or_default(),
            "stepping": number("stepping") as i64,
            "physicalId": field("physical id").unwrap_or_default(),
            "coreId": field("core id").unwrap_or_default(),
            "cores": 1,
            "modelName": field("model name").unwrap_or_default(),
            "mhz": number("cpu MHz"),
            "cacheSize": field("cache size")
                .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
                .unwrap_or(0),
            "flags": field("flags").unwrap_or_default().split_whitespace().collect::<Vec<_>>(),
            "microcode": field("microcode").unwrap_or_default(),
        }));
    }
    Some(Value::Array(out))
}

fn host() -> Option<Value> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let uptime: f64 = read("/proc/uptime")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let procs = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .count();
    let os_release = read("/etc/os-release").unwrap_or_default();
    let release_field = |k: &str| {
        os_release.lines().find_map(|l| {
            l.strip_prefix(&format!("{k}="))
                .map(|v| v.trim_matches('"').to_string())
        })
    };
    Some(json!({
        "hostname": read("/proc/sys/kernel/hostname").unwrap_or_default(),
        "uptime": uptime as u64,
        "bootTime": now.saturating_sub(uptime as u64),
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": release_field("ID").unwrap_or_default(),
        "platformFamily": release_field("ID_LIKE").unwrap_or_default(),
        "platformVersion": release_field("VERSION_ID").unwrap_or_default(),
        "kernelVersion": read("/proc/sys/kernel/osrelease").unwrap_or_default(),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": "",
        "virtualizationRole": "",
        "hostId": read("/etc/machine-id").unwrap_or_default(),
    }))
}

fn disk(path: &Path) -> Option<Value> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a properly sized buffer.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    let total = stat.f_blocks as u64 * block;
    let free = stat.f_bavail as u64 * block;
    let used = (stat.f_blocks as u64 - stat.f_bfree as u64) * block;
    let inodes_total = stat.f_files as u64;
    let inodes_free = stat.f_ffree as u64;
    let inodes_used = inodes_total.saturating_sub(inodes_free);
    Some(json!({
        "path": path.display().to_string(),
        "fstype": "",
        "total": total,
        "free": free,
        "used": used,
        "usedPercent": percent(used, used + free),
        "inodesTotal": inodes_total,
        "inodesUsed": inodes_used,
        "inodesFree": inodes_free,
        "inodesUsedPercent": percent(inodes_used, inodes_total),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_sizes_reads_the_kb_lines_and_passes_over_the_others() {
        let status = proc_sizes("/proc/self/status").unwrap();
        assert!(status["VmRSS"] > 0 && status["VmRSS"].is_multiple_of(1024));
        assert!(!status.contains_key("Name"), "not a size");
        assert!(proc_sizes("/proc/meminfo").unwrap()["MemTotal"] > 0);
        assert!(proc_sizes("/nonexistent").is_none());
    }
}
