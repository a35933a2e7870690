//! Garbage collection: `kiln prune`, `kiln system df`, `kiln rmi` freeing
//! space, the build cache's size cap, and collection never racing a build.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::harness::{Kiln, Mode};

/// The names in a store folder (none when it is missing).
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn blobs(k: &Kiln) -> BTreeSet<String> {
    names(&k.root().join("oci/blobs/sha256"))
}

fn snapshots(k: &Kiln) -> BTreeSet<String> {
    names(&k.root().join("snapshots")).into_iter().filter(|n| n.len() == 64).collect()
}

fn records(k: &Kiln) -> BTreeSet<String> {
    names(&k.root().join("cache")).into_iter().filter(|n| n.ends_with(".json")).collect()
}

/// The cache records naming `hex` (a layer's blob).
fn records_naming(k: &Kiln, hex: &str) -> BTreeSet<String> {
    records(k)
        .into_iter()
        .filter(|r| fs::read_to_string(k.root().join("cache").join(r)).unwrap().contains(hex))
        .collect()
}

fn hex(digest: &serde_json::Value) -> String {
    digest.as_str().unwrap().trim_start_matches("sha256:").to_owned()
}

/// Every blob an image needs: manifest, config, layers.
fn image_blobs(k: &Kiln, image: &str) -> BTreeSet<String> {
    let v = k.inspect(image);
    let mut out: BTreeSet<String> =
        v["Manifest"]["layers"].as_array().unwrap().iter().map(|l| hex(&l["digest"])).collect();
    out.insert(hex(&v["Manifest"]["config"]["digest"]));
    out.insert(hex(&v["Digest"]));
    out
}

/// The diffIDs of an image's layers, as hex: its snapshots' names.
fn diff_ids(k: &Kiln, image: &str) -> Vec<String> {
    k.inspect(image)["Config"]["rootfs"]["diff_ids"].as_array().unwrap().iter().map(hex).collect()
}

/// Write a context folder of its own with this Dockerfile.
fn context(k: &Kiln, name: &str, dockerfile: &str) -> PathBuf {
    let dir = k.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    k.give(&dir);
    dir
}

fn build(k: &Kiln, ctx: &Path, args: &[&str]) -> super::harness::Run {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(ctx.to_str().unwrap());
    k.cmd(&all).ok()
}

/// Set a file's mtime (a cache record's last use) `hours` back.
fn age(path: &Path, hours: u64) {
    let when = std::time::SystemTime::now() - Duration::from_secs(hours * 3600);
    fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
}

/// `1.234MB` → bytes.
fn bytes(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let scale = ["B", "kB", "MB", "GB", "TB"].iter().position(|u| *u == &text[split..]).unwrap();
    text[..split].parse::<f64>().unwrap() * 1000f64.powi(scale as i32)
}

const TWO_STAGES: &str = "FROM busybox AS tools\nRUN head -c 300000 /dev/urandom > /tool\n\
                          FROM busybox\nRUN echo kept > /kept\n";

#[test]
fn prune_removes_dangling_cache_and_what_nothing_holds_and_rebuilds_still_work() {
    for k in Kiln::each_mode() {
        let ctx = context(&k, "app", TWO_STAGES);
        build(&k, &ctx, &["-t", "app"]);
        let tools = k.dir.path().join("tools.tar");
        k.give(k.dir.path());
        build(&k, &ctx, &["--target", "tools", "-o", &format!("type=tar,dest={}", tools.display())]);
        // The tools stage is in no image once its unnamed one is removed.
        let unnamed: Vec<String> = k
            .cmd(&["images"])
            .ok()
            .stdout
            .lines()
            .filter(|l| l.starts_with("<none>"))
            .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
            .collect();
        assert_eq!(unnamed.len(), 1, "{unnamed:?}");
        k.cmd(&["rmi", &unnamed[0]]).ok();
        let app = image_blobs(&k, "app");
        let tool_layer: BTreeSet<String> =
            blobs(&k).into_iter().filter(|b| !app.contains(b) && !records_naming(&k, b).is_empty()).collect();
        assert_eq!(tool_layer.len(), 1, "the tools stage's RUN layer: {tool_layer:?}");
        let tool_layer = tool_layer.into_iter().next().unwrap();
        let tool_records = records_naming(&k, &tool_layer);
        // Garbage a killed run could leave: a blob, a snapshot and its short link, an old temp file.
        let root = k.root();
        let orphan = "0".repeat(64);
        fs::write(root.join("oci/blobs/sha256").join(&orphan), "orphan").unwrap();
        fs::create_dir_all(root.join("snapshots").join(&orphan).join("etc")).unwrap();
        std::os::unix::fs::symlink(format!("../{orphan}"), root.join("snapshots/l").join(&orphan[..12])).unwrap();
        fs::write(root.join("cache/.tmpKILLED"), "{").unwrap();
        age(&root.join("cache/.tmpKILLED"), 1);
        fs::write(root.join("cache/.tmpFRESH"), "{").unwrap();
        for planted in ["cache/.tmpKILLED", "cache/.tmpFRESH"].map(|p| root.join(p)).into_iter().chain([
            root.join("oci/blobs/sha256").join(&orphan),
            root.join("snapshots").join(&orphan),
            root.join("snapshots/l").join(&orphan[..12]),
        ]) {
            k.give(&planted);
        }
        let before = records(&k);

        let out = k.cmd(&["prune", "-f"]).ok();
        assert!(out.stdout.contains("Deleted build cache objects:"), "{}", out.stdout);
        assert!(out.stdout.lines().last().unwrap().starts_with("Total reclaimed space: "), "{}", out.stdout);
        let after = records(&k);
        assert_eq!(
            before.difference(&after).cloned().collect::<BTreeSet<_>>(),
            tool_records,
            "only the tools stage's records go"
        );
        assert!(!blobs(&k).contains(&tool_layer) && !blobs(&k).contains(&orphan));
        assert!(blobs(&k).is_superset(&app), "the image's blobs stay");
        assert!(!snapshots(&k).contains(&orphan) && !root.join("snapshots/l").join(&orphan[..12]).exists());
        assert!(snapshots(&k).contains(&diff_ids(&k, "app")[0]), "the base's snapshot stays");
        assert!(!root.join("cache/.tmpKILLED").exists() && root.join("cache/.tmpFRESH").exists());
        // Nothing is left to prune; the build still works, from cache where it can.
        let again = k.cmd(&["prune", "-f"]).ok();
        assert_eq!(again.stdout.trim(), "Total reclaimed space: 0B");
        let out = build(&k, &ctx, &["-t", "app"]);
        assert!(out.stderr.contains("CACHED"), "{}", out.stderr);
        assert_eq!(k.cmd(&["run", "--rm", "app", "cat", "/kept"]).ok().stdout, "kept\n");
        k.assert_clean();
    }
}

#[test]
fn prune_all_removes_every_cache_entry_and_keeps_images_whole() {
    let k = Kiln::with_busybox();
    let ctx = context(&k, "app", TWO_STAGES);
    build(&k, &ctx, &["-t", "app"]);
    let app = image_blobs(&k, "app");
    let out = k.cmd(&["prune", "-a", "-f"]).ok();
    assert!(out.stdout.contains("Deleted build cache objects:"), "{}", out.stdout);
    assert!(records(&k).is_empty());
    assert_eq!(blobs(&k), app.union(&image_blobs(&k, "busybox")).cloned().collect());
    let held: BTreeSet<String> = diff_ids(&k, "app").into_iter().collect();
    assert!(snapshots(&k).is_subset(&held), "{:?}", snapshots(&k));
    let out = build(&k, &ctx, &["-t", "app"]);
    assert!(!out.stderr.contains("CACHED"), "{}", out.stderr);
}

#[test]
fn prune_asks_first_unless_forced() {
    let k = Kiln::with_busybox();
    build(&k, &context(&k, "app", TWO_STAGES), &["-t", "app"]);
    let before = records(&k);
    let out = k.cmd(&["prune", "-a"]).failed();
    assert!(out.stdout.contains("WARNING! This will remove all build cache. Are you sure you want to continue? [y/N]"));
    assert!(out.stderr.contains("-f"), "{}", out.stderr);
    assert_eq!(records(&k), before);
    let mut child = k.command().args(["prune", "-a"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(records(&k).is_empty());
    for bad in [
        &["prune", "-f", "--filter", "label=x"][..],
        &["prune", "-f", "--filter", "until=soon"],
        &["prune", "-f", "--keep-storage", "lots"],
    ] {
        let out = k.cmd(bad).failed();
        assert!(out.stderr.contains(bad[3]), "{}", out.stderr);
    }
}

#[test]
fn filter_until_spares_entries_used_since() {
    let k = Kiln::with_busybox();
    let old = context(&k, "old", "FROM busybox\nRUN echo old > /old\n");
    let new = context(&k, "new", "FROM busybox\nRUN echo new > /new\n");
    build(&k, &old, &["-t", "old"]);
    let old_records = records(&k);
    for r in &old_records {
        age(&k.root().join("cache").join(r), 48);
    }
    build(&k, &new, &["-t", "new"]);
    // The new build's records, and those it used (FROM busybox's): touched.
    let recent = || -> BTreeSet<String> {
        let hour = Duration::from_secs(3600);
        let young = |r: &String| {
            fs::metadata(k.root().join("cache").join(r)).unwrap().modified().unwrap().elapsed().unwrap() < hour
        };
        records(&k).into_iter().filter(young).collect()
    };
    let new_records = recent();
    assert!(new_records.len() < records(&k).len() && !new_records.is_disjoint(&old_records), "{new_records:?}");
    let out = k.cmd(&["prune", "-af", "--filter", "until=24h"]).ok();
    assert_eq!(records(&k), new_records, "{}", out.stdout);
    // A hit makes a record recent again: its last use is what counts.
    build(&k, &new, &["-t", "new"]);
    for r in &new_records {
        age(&k.root().join("cache").join(r), 48);
    }
    build(&k, &new, &["-t", "new"]);
    assert_eq!(recent(), new_records);
    k.cmd(&["prune", "-af", "--filter", "until=24h"]).ok();
    assert_eq!(records(&k), new_records);
}

#[test]
fn rmi_frees_what_only_that_image_held_and_keeps_the_shared_base() {
    for k in Kiln::each_mode() {
        let ctx = context(&k, "app", "FROM busybox\nRUN head -c 200000 /dev/urandom > /data\n");
        build(&k, &ctx, &["-t", "app", "-t", "app:two"]);
        // Without build cache, the image alone holds its layer.
        k.cmd(&["prune", "-af"]).ok();
        let app = image_blobs(&k, "app");
        let base = image_blobs(&k, "busybox");
        let own: BTreeSet<String> = app.difference(&base).cloned().collect();
        assert!(own.len() >= 3, "manifest, config, layer: {own:?}");
        let ids = diff_ids(&k, "app");
        // Run it, so its layer is extracted too.
        k.cmd(&["run", "--rm", "app", "true"]).ok();
        assert!(snapshots(&k).contains(ids.last().unwrap()));
        // Another name still holds it.
        k.cmd(&["rmi", "app"]).ok();
        assert!(blobs(&k).is_superset(&app));
        let out = k.cmd(&["rmi", "app:two"]).ok();
        assert_eq!(out.stdout, "Untagged: app:two\n");
        assert!(blobs(&k).is_disjoint(&own), "{:?}", blobs(&k).intersection(&own).collect::<Vec<_>>());
        assert!(blobs(&k).is_superset(&base));
        assert!(!snapshots(&k).contains(ids.last().unwrap()));
        assert!(snapshots(&k).contains(&ids[0]), "busybox's snapshot stays");
        let link = k.root().join("snapshots/l").join(&ids.last().unwrap()[..12]);
        assert!(fs::symlink_metadata(link).is_err());
        assert_eq!(k.cmd(&["run", "--rm", "busybox", "echo", "ok"]).ok().stdout, "ok\n");
    }
}

#[test]
fn the_cache_cap_evicts_least_recently_used_entries_first() {
    let k = Kiln::with_busybox();
    let ctx = |name: &str| context(&k, name, &format!("FROM busybox\nRUN head -c 1000000 /dev/urandom > /{name}\n"));
    let (a, b, c) = (ctx("a"), ctx("b"), ctx("c"));
    build(&k, &a, &["-t", "a"]);
    build(&k, &b, &["-t", "b"]);
    // A hit: a is now used more recently than b.
    std::thread::sleep(Duration::from_millis(20));
    build(&k, &a, &["-t", "a"]);
    let layer = |image: &str| {
        hex(k.inspect(image)["Manifest"]["layers"].as_array().unwrap().last().unwrap().get("digest").unwrap())
    };
    let (la, lb) = (layer("a"), layer("b"));
    // Once the images are gone, only the cache holds their 1 MB layers.
    k.cmd(&["rmi", "a", "b"]).ok();
    assert!(blobs(&k).contains(&la) && blobs(&k).contains(&lb));
    // Room for one of them (its plain blob and its snapshot: ~2 MB): b, the
    // least recently used, goes.
    let out = build(&k, &c, &["-t", "c", "--keep-storage", "3000k"]);
    assert!(out.stderr.contains("least recently used"), "{}", out.stderr);
    assert!(blobs(&k).contains(&la) && !blobs(&k).contains(&lb));
    assert!(records_naming(&k, &lb).is_empty() && !records_naming(&k, &la).is_empty());
    assert!(blobs(&k).is_superset(&image_blobs(&k, "c")));
    // The config file's cap applies when no flag is given.
    let config = k.dir.path().join("config.toml");
    fs::write(&config, "keep_storage = \"100k\"\n").unwrap();
    k.give(&config);
    let out = k.command().env("KILN_CONFIG", &config).args(["build", "-t", "c"]).arg(&c).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!blobs(&k).contains(&la));
    assert!(blobs(&k).is_superset(&image_blobs(&k, "c")));
    let out = k
        .command()
        .env("KILN_CONFIG", &config)
        .env("KILN_KEEP_STORAGE", "many")
        .args(["build"])
        .arg(&c)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("KILN_KEEP_STORAGE"), "{out:?}");
}

#[test]
fn a_build_running_while_prune_runs_is_not_broken() {
    let k = Kiln::with_busybox();
    let ctx = context(&k, "slow", "FROM busybox\nRUN echo first > /first\nRUN sleep 2 && echo second > /second\n");
    let mut child: Child = k
        .command()
        .args(["build", "-t", "slow"])
        .arg(&ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first RUN's result is in the cache: the build is in its second RUN.
    let start = Instant::now();
    while records(&k).len() < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the build ended before its first RUN was cached");
        assert!(start.elapsed() < Duration::from_secs(60), "the first RUN was never cached");
        std::thread::sleep(Duration::from_millis(20));
    }
    let prune = k.cmd(&["prune", "-af"]).ok();
    assert!(prune.stderr.contains("waiting for the builds"), "{}", prune.stderr);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(blobs(&k).is_superset(&image_blobs(&k, "slow")));
    assert_eq!(k.cmd(&["run", "--rm", "slow", "cat", "/first", "/second"]).ok().stdout, "first\nsecond\n");
}

#[test]
fn system_df_counts_what_du_counts() {
    let k = Kiln::in_mode(Mode::Root);
    let ctx = context(&k, "app", TWO_STAGES);
    build(&k, &ctx, &["-t", "app"]);
    // The tools stage's layer, once its image is gone, is build cache only.
    build(&k, &ctx, &["-t", "tools", "--target", "tools"]);
    k.cmd(&["rmi", "tools"]).ok();
    let out = k.cmd(&["system", "df"]).ok();
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(&rows[1][..3], ["Images", "2", "0"]);
    // No container, no volume: rows of zeros, in docker's order.
    assert_eq!(&rows[2][..3], ["Containers", "0", "0"]);
    assert_eq!(&rows[3][..4], ["Local", "Volumes", "0", "0"]);
    assert_eq!(&rows[4][..2], ["Build", "Cache"]);
    assert_eq!(rows[4][2], records(&k).len().to_string());
    let images = bytes(rows[1][3]);
    let cache = bytes(rows[4][5]);
    assert!(cache > 300_000.0, "the tools stage's layer is build cache only: {}", out.stdout);
    let du = |dirs: &[&str]| -> f64 {
        let mut cmd = std::process::Command::new("du");
        cmd.args(["-s", "-c", "-B1"]).args(dirs.iter().map(|d| k.root().join(d)));
        let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        out.lines().last().unwrap().split_whitespace().next().unwrap().parse().unwrap()
    };
    let total = du(&["oci/blobs/sha256", "snapshots", "cache"]);
    let diff = (images + cache - total).abs();
    assert!(diff < total * 0.02 + 50_000.0, "df {images} + {cache}, du {total}:\n{}", out.stdout);
    // After prune -a the build cache is empty and its size was what was freed.
    let pruned = k.cmd(&["prune", "-af"]).ok();
    let freed = bytes(pruned.stdout.lines().last().unwrap().rsplit(' ').next().unwrap());
    assert!((freed - cache).abs() < cache * 0.05 + 20_000.0, "freed {freed}, df said {cache}");
    let out = k.cmd(&["system", "df", "-v"]).ok();
    let empty = |l: &str| l.split_whitespace().collect::<Vec<_>>() == ["Build", "Cache", "0", "0", "0B", "0B"];
    assert!(out.stdout.lines().any(empty), "{}", out.stdout);
    assert!(out.stdout.contains("app:latest") && out.stdout.contains("SHARED SIZE"), "{}", out.stdout);
}
