//! The OpenAPI document describes the API that is actually served.

use rampart_testkit::client::client;

use crate::on_both_backends;
use crate::support::TestServer;

on_both_backends!(openapi_document_is_served, |backend| {
    let server = TestServer::start(backend).await;
    let response = client()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: serde_json::Value = response.json().await.unwrap();
    assert_eq!(document["info"]["title"], "Rampart API");
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    server.stop().await;
});
