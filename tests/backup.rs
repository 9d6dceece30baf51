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
