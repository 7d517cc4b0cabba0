//! Companies, contacts, staff and the permission rules, through the API alone.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_reseller_its_customer_and_their_contacts_are_created_and_read_back() {
    let app = TestApp::spawn().await;
    let reseller = app
        .create_company("Kassenprofi Nord GmbH", "reseller", None)
        .await;
    let reseller_id = reseller["id"].as_str().unwrap();
    let customer = app
        .create_company("Café Müller", "customer", Some(reseller_id))
        .await;
    assert_eq!(customer["reseller_id"], reseller["id"]);
    assert_eq!(customer["kind"], "customer");
    let customer_id = customer["id"].as_str().unwrap();

    let manager = app
        .create_contact(
            customer_id,
            "Maria Müller",
            "Maria@Cafe-Mueller.example",
            "manager",
        )
        .await;
    assert_eq!(manager["email"], "maria@cafe-mueller.example");
    assert_eq!(manager["locale"], "de", "the default locale applies");
    assert_eq!(manager["permissions"]["portal"], true);
    assert_eq!(manager["permissions"]["quotes"], false);

    let (status, fetched) = app
        .get(&format!(
            "/api/v1/contacts/{}",
            manager["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, manager);
    let (status, fetched) = app.get(&format!("/api/v1/companies/{customer_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, customer);

    let staff = app.create_staff("Sam Support", "sam@vendor.example").await;
    let (status, fetched) = app
        .get(&format!("/api/v1/staff/{}", staff["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, staff);

    // Lists, newest first, with their filters.
    let member = app
        .create_contact(
            customer_id,
            "Jonas Weber",
            "jonas@cafe-mueller.example",
            "member",
        )
        .await;
    let (_, contacts) = app
        .get(&format!("/api/v1/contacts?company_id={customer_id}"))
        .await;
    assert_eq!(contacts["total"], 2);
    assert_eq!(contacts["items"][0], member);
    assert_eq!(contacts["items"][1], manager);
    let (_, customers) = app
        .get(&format!("/api/v1/companies?reseller_id={reseller_id}"))
        .await;
    assert_eq!(customers["total"], 1);
    assert_eq!(customers["items"][0], customer);
    let (_, resellers) = app.get("/api/v1/companies?kind=reseller").await;
    assert_eq!(resellers["items"][0], reseller);
    let (_, all_staff) = app.get("/api/v1/staff").await;
    assert_eq!(all_staff["items"][0], staff);
}

#[tokio::test]
async fn permissions_are_granted_by_managers_and_refused_as_the_rules_say() {
    let app = TestApp::spawn().await;
    let reseller = app.create_company("Kassenprofi", "reseller", None).await;
    let direct = app
        .create_company("Bäckerei Schmidt", "customer", None)
        .await;
    let via_reseller = app
        .create_company("Café Müller", "customer", reseller["id"].as_str())
        .await;
    let direct_id = direct["id"].as_str().unwrap();
    let via_id = via_reseller["id"].as_str().unwrap();
    let direct_manager = app
        .create_contact(direct_id, "Anna Schmidt", "anna@schmidt.example", "manager")
        .await;
    let direct_member = app
        .create_contact(direct_id, "Ben Schmidt", "ben@schmidt.example", "member")
        .await;
    let via_manager = app
        .create_contact(via_id, "Maria Müller", "maria@mueller.example", "manager")
        .await;
    let via_member = app
        .create_contact(via_id, "Jonas Weber", "jonas@mueller.example", "member")
        .await;
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_string();
    let grant = |requested_by: String, quotes: bool| json!({"portal": true, "quotes": quotes, "orders": quotes, "invoices": false, "subscriptions": false, "requested_by": requested_by});

    // A manager of the same company may grant.
    let path = format!("/api/v1/contacts/{}/permissions", id(&direct_member));
    let granted = expect(
        StatusCode::OK,
        app.put(&path, &grant(id(&direct_manager), true)).await,
    );
    assert_eq!(granted["permissions"]["quotes"], true);
    assert_eq!(granted["permissions"]["orders"], true);

    // A member may not, nor a manager of another company.
    let (code, _) = error_of(
        StatusCode::UNPROCESSABLE_ENTITY,
        app.put(&path, &grant(id(&direct_member), false)).await,
    );
    assert_eq!(code, "not_a_manager");
    let (code, _) = error_of(
        StatusCode::UNPROCESSABLE_ENTITY,
        app.put(&path, &grant(id(&via_manager), false)).await,
    );
    assert_eq!(code, "not_a_manager");

    // A reseller's customer gets no quotes, orders, invoices or subscriptions.
    let via_path = format!("/api/v1/contacts/{}/permissions", id(&via_member));
    let (code, _) = error_of(
        StatusCode::UNPROCESSABLE_ENTITY,
        app.put(&via_path, &grant(id(&via_manager), true)).await,
    );
    assert_eq!(code, "reseller_customer");
    let portal_off = json!({"portal": false, "quotes": false, "orders": false, "invoices": false, "subscriptions": false, "requested_by": id(&via_manager)});
    let changed = expect(StatusCode::OK, app.put(&via_path, &portal_off).await);
    assert_eq!(changed["permissions"]["portal"], false);

    // The refused requests changed nothing.
    let (_, member) = app
        .get(&format!("/api/v1/contacts/{}", id(&direct_member)))
        .await;
    assert_eq!(member["permissions"]["quotes"], true);

    // Each change is kept in the company's history, with who asked.
    let (status, history) = app
        .get(&format!("/api/v1/companies/{direct_id}/history"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = history["items"].as_array().unwrap();
    assert_eq!(history["total"], 1);
    assert_eq!(items[0]["event"]["type"], "permissions_changed");
    assert_eq!(items[0]["event"]["to"]["quotes"], true);
    assert_eq!(items[0]["event"]["from"]["quotes"], false);
    assert_eq!(items[0]["author"]["id"], direct_manager["id"]);
}
