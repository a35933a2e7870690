//! `kiln inspect CONTAINER`: the record in docker's shape (the fields kiln
//! has, under docker's names), so scripts written for `docker inspect`
//! (`.State.OOMKilled`, `.State.ExitCode`) read it.

use serde_json::{json, Value};

use super::logs::rfc3339_nano;
use super::state::{Containers, Status};
use super::ContainerError;
use crate::sandbox::NetworkMode;

/// Container `id`'s record as docker's inspect JSON.
pub fn inspect_json(containers: &Containers, id: &str) -> Result<Value, ContainerError> {
    let config = containers.config(id)?;
    let state = containers.state(id)?;
    let time = |ns: u64| if ns == 0 { "0001-01-01T00:00:00Z".to_owned() } else { rfc3339_nano(ns) };
    let network = match config.network {
        NetworkMode::Host => "host",
        NetworkMode::None => "none",
        NetworkMode::Outbound => "default",
    };
    Ok(json!({
        "Id": config.id,
        "Name": format!("/{}", config.name),
        "Created": time(config.created),
        "Path": config.argv.first(),
        "Args": config.argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": state.status.name(),
            "Running": state.status == Status::Running,
            "Pid": state.pid,
            "ExitCode": state.exit_code,
            "OOMKilled": state.oom_killed,
            "Restarting": false,
            "Error": state.error,
            "StartedAt": time(state.started_at),
            "FinishedAt": time(state.finished_at),
        },
        "Image": config.image_id,
        "LogPath": containers.dir(id).join("ctr.log"),
        "RestartCount": state.restart_count,
        "Config": {
            "Hostname": config.hostname,
            "User": config.user,
            "Env": config.env,
            "Cmd": config.argv,
            "Image": config.image,
            "WorkingDir": config.cwd,
            "StopSignal": config.stop_signal,
            "StopTimeout": config.stop_timeout,
        },
        "HostConfig": {
            "AutoRemove": config.auto_remove,
            "ReadonlyRootfs": config.readonly_root,
            "RestartPolicy": config.restart,
            "NetworkMode": network,
            "Memory": config.limits.memory.unwrap_or(0),
            "NanoCpus": config.limits.millicpus.unwrap_or(0) * 1_000_000,
            "PidsLimit": config.limits.pids,
            "PortBindings": config.ports,
            "Mounts": config.mounts,
            "LogConfig": { "Type": "json-file", "Config": {
                "max-size": config.log.max_size.to_string(),
                "max-file": config.log.max_files.to_string(),
            }},
        },
    }))
}
