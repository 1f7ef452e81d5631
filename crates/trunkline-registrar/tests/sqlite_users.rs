//! The SQLite user backend on a real database file: found, HA1, realm
//! precedence, disabled, unknown; and it survives a reopen.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use trunkline_registrar::{Algorithm, Lookup, Secret, SqliteUsers, User, UserBackend};

fn user(name: &str, secret: Secret) -> User {
    User {
        username: name.into(),
        secret,
        display_name: Some(format!("Ext {name}")),
        id: None,
        email: None,
        allow_guest_calls: true,
    }
}

#[tokio::test]
async fn accounts_are_found_by_user_and_realm_and_persist() {
    let dir = std::env::temp_dir().join(format!(
        "trunkline-sqlite-{}",
        trunkline_transaction::new_tag()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.db");
    {
        let users = SqliteUsers::open(&path).unwrap();
        users
            .upsert(&user("1001", Secret::Password("secret".into())), "", true)
            .unwrap();
        let ha1 = Algorithm::Md5.ha1("1002", "pbx.example.com", "pw");
        users
            .upsert(&user("1002", Secret::Ha1(ha1)), "pbx.example.com", true)
            .unwrap();
        // The realm's own row wins over the realm-less one.
        users
            .upsert(&user("1002", Secret::Password("fallback".into())), "", true)
            .unwrap();
        users
            .upsert(&user("1003", Secret::Password("x".into())), "", false)
            .unwrap();
    }
    let users = SqliteUsers::open(&path).unwrap();
    let Lookup::Found(found) = users.lookup("1001", "pbx.example.com").await.unwrap() else {
        panic!("1001 is there");
    };
    assert_eq!(found.secret, Secret::Password("secret".into()));
    assert_eq!(found.display_name.as_deref(), Some("Ext 1001"));
    assert!(found.allow_guest_calls);
    let Lookup::Found(hashed) = users.lookup("1002", "pbx.example.com").await.unwrap() else {
        panic!("1002 is there");
    };
    assert!(matches!(hashed.secret, Secret::Ha1(_)));
    let Lookup::Found(other_realm) = users.lookup("1002", "other.example.com").await.unwrap()
    else {
        panic!("the realm-less row serves other realms");
    };
    assert_eq!(other_realm.secret, Secret::Password("fallback".into()));
    assert_eq!(
        users.lookup("1003", "pbx.example.com").await.unwrap(),
        Lookup::Refused {
            reason: "disabled".into()
        }
    );
    assert_eq!(
        users.lookup("9999", "pbx.example.com").await.unwrap(),
        Lookup::Unknown
    );
    drop(users);
    std::fs::remove_dir_all(&dir).unwrap();
}
