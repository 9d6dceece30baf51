//! `fawkes backup` and `fawkes restore`, run as the real binary against a live server's
//! database: every table comes back row for row, the restored database serves (old passwords,
//! refresh tokens and API keys work), and a non-empty target is refused. SQLite always;
//! PostgreSQL and MariaDB when their test URLs are set.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Backend, TestDatabase, TestServer};
use fawkes_data::entity;
use fawkes_domain::Role;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::json;

/// Runs `fawkes ARGS --database-url URL` in a clean environment (PATH as given).
fn fawkes(dir: &Path, args: &[&str], url: &str, path_var: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(dir)
        .args(args)
        .args(["--database-url", url])
        .env_clear()
        .env("PATH", path_var)
        .output()
        .expect("fawkes runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every row of every table, in a stable order, as text.
async fn contents(db: &DatabaseConnection) -> Vec<String> {
    macro_rules! table {
        ($($module:ident),*) => {{
            let mut all = Vec::new();
            $(
                let mut rows: Vec<String> = entity::$module::Entity::find()
                    .all(db)
                    .await
                    .expect(concat!("read ", stringify!($module)))
                    .iter()
                    .map(|row| format!("{}: {row:?}", stringify!($module)))
                    .collect();
                rows.sort();
                all.extend(rows);
            )*
            all
        }};
    }
    table!(
        user,
        user_device,
        session,
        refresh_token,
        api_key,
        room,
        room_member,
        message,
        comment
    )
}

async fn round_trip(backend: Backend) {
    let Some(source) = TestServer::start(backend).await else {
        return;
    };
    // Some of everything, with text that a careless dump would mangle.
    let admin = source.user_with_role("root", Role::Admin).await;
    let ada = source.register("ada").await;
    let bob = source.register("bob").await;
    let with_device = source.login("bob", Some("phone")).await;
    let bob_phone = common::session_from(with_device.expect(200));
    source.create_room(&ada, "secret", true).await;
    source
        .post(
            "/api/v1/rooms/secret/members",
            Some(&ada.access_token),
            json!({"user_id": bob.user_id}),
        )
        .await
        .expect(201);
    let tricky = "quote ' double \" backslash \\ newline\n tab\t emoji 🦊 NUL-free ünïcødé; DROP TABLE users; --";
    for body in ["first", tricky] {
        source
            .post(
                "/api/v1/rooms/secret/messages",
                Some(&bob_phone.access_token),
                json!({"body": body}),
            )
            .await
            .expect(201);
    }
    source
        .post(
            "/api/v1/videos/v-42/comments",
            Some(&ada.access_token),
            json!({"content": tricky}),
        )
        .await
        .expect(201);
    let key = source
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": "payments", "scopes": ["publish"]}),
        )
        .await
        .expect(201)["key"]
        .as_str()
        .expect("key")
        .to_owned();

    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join(match backend {
        Backend::Sqlite => "fawkes.db.bak",
        Backend::Postgres => "fawkes.pgdump",
        Backend::MySql => "fawkes.sql",
    });
    let backup_arg = backup.to_str().expect("utf-8 path");
    let path_var = std::env::var("PATH").unwrap_or_default();
    let url = source.config.database_url.clone();
    // Online: the source server is running and serving while the backup is taken.
    let made = fawkes(dir.path(), &["backup", backup_arg], &url, &path_var);
    assert!(made.status.success(), "{}", text(&made));
    assert!(backup.is_file());
    let again = fawkes(dir.path(), &["backup", backup_arg], &url, &path_var);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    let expected = contents(&source.db).await;
    assert!(expected.len() >= 14, "{expected:#?}");

    let target = TestDatabase::for_backend(backend)
        .await
        .expect("an empty database");
    let target_url = target.url.clone();
    let restored = fawkes(dir.path(), &["restore", backup_arg], &target_url, &path_var);
    assert!(restored.status.success(), "{}", text(&restored));
    // Into a database that has anything in it: refused, nothing touched.
    let refused = fawkes(dir.path(), &["restore", backup_arg], &target_url, &path_var);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));
    let refused = fawkes(dir.path(), &["restore", backup_arg], &url, &path_var);
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));

    let restored = TestServer::start_on(backend, target, |c| c.auto_migrate = true).await;
    assert_eq!(
        contents(&restored.db).await,
        expected,
        "every row came back as it was"
    );
    // The restored database serves: passwords, refresh tokens and API keys still work.
    restored.login("ada", None).await.expect(200);
    let refreshed = restored
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": bob_phone.refresh_token}),
        )
        .await;
    let bob_again = common::session_from(refreshed.expect(200));
    let (messages, _) = restored
        .read_page(
            "/api/v1/rooms/secret/messages",
            &bob_again.access_token,
            10,
            None,
        )
        .await;
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, [tricky, "first"]);
    restored
        .post(
            "/api/v1/broadcast",
            Some(&key),
            json!({"topic": "notification:x", "event": "e", "payload": {}}),
        )
        .await
        .expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_round_trips() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_round_trips() {
    round_trip(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_round_trips() {
    round_trip(Backend::MySql).await;
}

/// Without the client tools the error says which tool is missing and what to install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dump_tool_is_named() {
    for (backend, tool) in [
        (Backend::Postgres, "pg_dump"),
        (Backend::MySql, "mysqldump"),
    ] {
        let Some(database) = TestDatabase::for_backend(backend).await else {
            continue;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let output = fawkes(
            dir.path(),
            &["backup", "out.dump"],
            &database.url,
            "/nonexistent",
        );
        assert!(!output.status.success());
        let said = text(&output);
        assert!(said.contains(&format!("`{tool}` was not found")), "{said}");
        assert!(!dir.path().join("out.dump").exists());
    }
}

/// A backup goes back only into the kind of database it came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_another_backend_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path_var = std::env::var("PATH").unwrap_or_default();
    let source = dir.path().join("source.db");
    let url = format!("sqlite://{}", source.display());
    let made = fawkes(dir.path(), &["backup", "copy.db"], &url, &path_var);
    assert!(made.status.success(), "{}", text(&made));
    std::fs::write(dir.path().join("fake.pgdump"), b"PGDMP\x01\x0f").expect("write");
    let target = format!("sqlite://{}", dir.path().join("target.db").display());
    let refused = fawkes(dir.path(), &["restore", "fake.pgdump"], &target, &path_var);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("not a SQLite backup"),
        "{}",
        text(&refused)
    );
    let restored = fawkes(dir.path(), &["restore", "copy.db"], &target, &path_var);
    assert!(restored.status.success(), "{}", text(&restored));
}

/// The recurring backup: each run writes a complete, restorable file, the newest `keep` are
/// left after the third, and the schedule itself starts runs.
async fn scheduled_backups_keep_the_newest(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("backups");
    let configured = folder.clone();
    let Some(source) = TestServer::start_with(backend, move |c| {
        c.backup.dir = Some(configured);
        c.backup.keep = 2;
        // Never during the test: the runs below are enqueued one after another.
        c.backup.schedule = "0 0 1 1 *".to_owned();
    })
    .await
    else {
        return;
    };
    let ada = source.register("ada").await;
    source.create_room(&ada, "plans", false).await;
    let listed = |folder: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .expect("backup folder")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    };
    let mut made = Vec::new();
    for round in 0..3 {
        source
            .post(
                "/api/v1/rooms/plans/messages",
                Some(&ada.access_token),
                json!({"body": format!("before backup {round}")}),
            )
            .await
            .expect(201);
        source.run_job("backup", json!({})).await;
        let names = listed(&folder);
        let newest = names.last().expect("a backup").clone();
        assert!(!made.contains(&newest), "a new file each run: {names:?}");
        made.push(newest);
        assert_eq!(names.len(), (round + 1).min(2), "{names:?}");
    }
    assert_eq!(listed(&folder), made[1..], "the two newest are kept");
    let extension = match backend {
        Backend::Sqlite => ".db",
        Backend::Postgres => ".pgdump",
        Backend::MySql => ".sql",
    };
    assert!(
        made.iter()
            .all(|n| n.starts_with("fawkes-") && n.ends_with(extension)),
        "{made:?}"
    );

    // The newest restores, with the message posted just before it.
    let target = TestDatabase::for_backend(backend)
        .await
        .expect("an empty database");
    let newest = folder.join(&made[2]);
    let restored = fawkes(
        dir.path(),
        &["restore", newest.to_str().expect("utf-8 path")],
        &target.url,
        &std::env::var("PATH").unwrap_or_default(),
    );
    assert!(restored.status.success(), "{}", text(&restored));
    let restored = TestServer::start_on(backend, target, |c| c.auto_migrate = true).await;
    let ada = common::session_from(restored.login("ada", None).await.expect(200));
    let (messages, _) = restored
        .read_page("/api/v1/rooms/plans/messages", &ada.access_token, 10, None)
        .await;
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(
        bodies,
        ["before backup 2", "before backup 1", "before backup 0"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_scheduled_backups_keep_the_newest() {
    scheduled_backups_keep_the_newest(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_scheduled_backups_keep_the_newest() {
    scheduled_backups_keep_the_newest(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_scheduled_backups_keep_the_newest() {
    scheduled_backups_keep_the_newest(Backend::MySql).await;
}

/// With `[backup] dir` set, the schedule starts backups by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_schedule_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("backups");
    let configured = folder.clone();
    let _server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.backup.dir = Some(configured);
        // Every second (the seconds field first).
        c.backup.schedule = "* * * * * *".to_owned();
        c.jobs.poll_interval_ms = 100;
    })
    .await
    .expect("SQLite always runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let finished = std::fs::read_dir(&folder)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| n.starts_with("fawkes-") && n.ends_with(".db"));
        if let Some(name) = finished {
            let head = std::fs::read(folder.join(&name)).expect("read the backup");
            assert!(
                head.starts_with(b"SQLite format 3\0"),
                "{name} is a database"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled backup appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
