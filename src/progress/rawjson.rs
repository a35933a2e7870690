//! `--progress rawjson`: one JSON object per line, each with the schema's
//! version `v` (docs/progress.md has the schema). Made for programs: every
//! step's every line, unescaped, with the vertex digest that names it across builds.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kiln_solver::{Digest, Event, EventKind};
use serde_json::{json, Map, Value};

use super::View;
use crate::build::Progress;
use crate::registry::Transfer;

/// The schema's version, `v` in every line. A change that removes or
/// renames a field, or changes its meaning, raises it; new fields and new
/// events do not.
pub const RAWJSON_VERSION: u32 = 1;

/// Writes one JSON object per line.
pub struct RawJson {
    out: Mutex<Box<dyn Write + Send>>,
    start: Instant,
}

impl RawJson {
    /// Lines written to `out` (the command gives stderr).
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Mutex::new(Box::new(out)), start: Instant::now() }
    }

    /// The object an event is.
    pub fn object(e: &Event) -> Value {
        let (event, extra) = match &e.kind {
            EventKind::Started => ("started", json!({})),
            EventKind::Cached => ("cached", json!({})),
            EventKind::Log(text) => ("log", json!({ "text": text })),
            EventKind::Bytes { done, total } => ("bytes", json!({ "done": done, "total": total })),
            EventKind::Done(d) => ("done", json!({ "seconds": d.as_secs_f64() })),
            EventKind::Failed(d, error) => ("error", json!({ "seconds": d.as_secs_f64(), "error": error })),
        };
        let mut object = json!({
            "event": event,
            "step": e.index,
            "steps": e.total,
            "digest": e.digest.as_str(),
            "name": e.name,
        });
        merge(&mut object, extra);
        object
    }

    fn write(&self, mut object: Value) {
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
        merge(&mut object, json!({ "v": RAWJSON_VERSION, "time": (time * 1000.0).round() / 1000.0 }));
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(format!("{object}\n").as_bytes());
        let _ = out.flush();
    }
}

/// `extra`'s fields added to `object` (both objects).
fn merge(object: &mut Value, extra: Value) {
    if let (Value::Object(o), Value::Object(e)) = (object, extra) {
        let e: Map<String, Value> = e;
        o.extend(e);
    }
}

impl Progress for RawJson {
    fn event(&self, e: &Event) {
        self.write(Self::object(e));
    }

    fn warning(&self, message: &str) {
        self.write(json!({ "event": "warning", "message": message }));
    }

    fn image_written(&self, id: &Digest) {
        self.write(json!({ "event": "image", "id": id.as_str() }));
    }

    fn named(&self, name: &str) {
        self.write(json!({ "event": "named", "name": name }));
    }

    fn transfer(&self, event: &Transfer) {
        let object = match event {
            Transfer::Exists { digest } => json!({ "status": "exists", "digest": digest }),
            Transfer::Started { digest, size } => json!({ "status": "started", "digest": digest, "size": size }),
            Transfer::Done { digest, size } => json!({ "status": "done", "digest": digest, "size": size }),
            Transfer::Mounted { digest, from } => json!({ "status": "mounted", "digest": digest, "from": from }),
        };
        let mut object = object;
        merge(&mut object, json!({ "event": "transfer" }));
        self.write(object);
    }

    fn cache_miss(&self, miss: &crate::explain::Miss) {
        self.write(json!({
            "event": "cache_miss",
            "step": miss.index,
            "name": miss.step,
            "expected": miss.is_expected(),
            "summary": miss.summary(),
            "details": miss.details(),
        }));
    }
}

impl View for RawJson {
    fn finish(&self, ok: bool) {
        self.write(json!({ "event": "finished", "ok": ok, "seconds": self.start.elapsed().as_secs_f64() }));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::plain::tests::{event, Shared};
    use super::*;

    #[test]
    fn every_line_is_an_object_with_the_version_and_its_fields() {
        let out = Shared::default();
        let raw = RawJson::new(out.clone());
        raw.event(&event(1, "[1/2] FROM busybox", EventKind::Started));
        raw.event(&event(2, "[2/2] RUN x", EventKind::Log("a \"quoted\"\tline".into())));
        raw.event(&event(2, "[2/2] RUN x", EventKind::Bytes { done: 5, total: Some(9) }));
        raw.event(&event(2, "[2/2] RUN x", EventKind::Failed(Duration::from_millis(1500), "exit code: 1".into())));
        raw.warning("w");
        raw.finish(false);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().all(|l| l["v"] == RAWJSON_VERSION && l["time"].as_f64().unwrap() > 1e9), "{lines:?}");
        assert_eq!(
            (&lines[0]["event"], &lines[0]["step"], &lines[0]["steps"], &lines[0]["name"]),
            (&json!("started"), &json!(1), &json!(3), &json!("[1/2] FROM busybox"))
        );
        assert_eq!(lines[0]["digest"], json!(Digest::of(b"[1/2] FROM busybox").as_str()));
        assert_eq!((&lines[1]["event"], &lines[1]["text"]), (&json!("log"), &json!("a \"quoted\"\tline")));
        assert_eq!((&lines[2]["done"], &lines[2]["total"]), (&json!(5), &json!(9)));
        assert_eq!(
            (&lines[3]["event"], &lines[3]["error"], &lines[3]["seconds"]),
            (&json!("error"), &json!("exit code: 1"), &json!(1.5))
        );
        assert_eq!((&lines[4]["event"], &lines[4]["message"]), (&json!("warning"), &json!("w")));
        assert_eq!((&lines[5]["event"], &lines[5]["ok"]), (&json!("finished"), &json!(false)));
    }
}
