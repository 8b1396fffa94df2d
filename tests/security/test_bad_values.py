"""Values that pass validation but PostgreSQL cannot hold get a clean 400, never a 500."""


def test_out_of_range_datetime_filter_is_a_clean_400(client_a):
    response = client_a.get("/api/v1/billing/ledger", {"created_after": "0322-08-17T19:18:58-17:22"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_value"
    # The connection is still usable for the next request (the request's transaction rolled back).
    assert client_a.get("/api/v1/account").status_code == 200


def test_year_zero_month_is_refused(client_a):
    response = client_a.post("/api/v1/billing/disputes", {"description": "x", "month": "0000-01"}, format="json")
    assert response.status_code in (400, 404)
    assert response.json()["code"] in {"validation_error", "not_found"}
