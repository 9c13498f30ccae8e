//! The autopilot configuration (`/v1/operator/autopilot/configuration`), as stored and
//! rendered.

use bincode::{Decode, Encode};
use serde_json::{json, Value};
use std::time::Duration;

/// The autopilot configuration (`structs.AutopilotConfig`).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct AutopilotConfig {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: Duration,
    pub max_trailing_logs: u64,
    pub min_quorum: u64,
    pub server_stabilization_time: Duration,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Default for AutopilotConfig {
    /// Consul's defaults (`api.NewAutopilotConfiguration`, the agent's `autopilot` defaults).
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10),
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl serde::Serialize for AutopilotConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl AutopilotConfig {
    /// The configuration as Consul's API renders it (durations as Go text).
    fn to_json(&self) -> Value {
        json!({
            "CleanupDeadServers": self.cleanup_dead_servers,
            "LastContactThreshold": crate::duration::format(self.last_contact_threshold),
            "MaxTrailingLogs": self.max_trailing_logs,
            "MinQuorum": self.min_quorum,
            "ServerStabilizationTime": crate::duration::format(self.server_stabilization_time),
            "RedundancyZoneTag": self.redundancy_zone_tag,
            "DisableUpgradeMigration": self.disable_upgrade_migration,
            "UpgradeVersionTag": self.upgrade_version_tag,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        })
    }
}

impl crate::store::codec::Record for AutopilotConfig {
    const VERSION: u8 = 1;
}
