"""Register notices: in force now by default, with their window; writes need the notices scope."""

from __future__ import annotations

from tests.conftest import assert_problem

HOLIDAY = ("Register update: there will be a delay adding new records during our holiday period "
           "(Dec 17 - Jan 4)")


def test_notices_in_force_now_and_by_status(client, auth):
    active = client.post("/notices", json={"message": HOLIDAY, "starts": "2020-12-01",
                                           "ends": "2099-01-04T23:59:59Z"}, headers=auth)
    assert active.status_code == 201
    past = client.post("/notices", json={"message": "Old", "starts": "2019-01-01T00:00:00Z",
                                         "ends": "2019-02-01T00:00:00+01:00"}, headers=auth).get_json()
    assert past["ends"] == "2019-01-31T23:00:00Z"  # stored and answered in UTC
    future = client.post("/notices", json={"message": "Soon", "starts": "2098-01-01T00:00:00Z"},
                         headers=auth).get_json()
    forever = client.post("/notices", json={"message": "Always"}, headers=auth).get_json()

    def messages(query=""):
        return [n["message"] for n in client.get("/notices" + query).get_json()["items"]]

    assert messages() == [HOLIDAY, "Always"]
    assert messages("?status=expired") == ["Old"]
    assert messages("?status=upcoming") == ["Soon"]
    assert len(messages("?status=all")) == 4
    assert forever["starts"] is None and forever["ends"] is None

    notice_id = active.get_json()["id"]
    read = client.get(f"/notices/{notice_id}")
    assert read.get_json()["message"] == HOLIDAY
    assert_problem(client.patch(f"/notices/{notice_id}", json={"ends": "2000-01-01T00:00:00Z"},
                                headers=auth), 422, "ends")
    assert_problem(client.patch(f"/notices/{notice_id}", json={"message": "x"},
                                headers={**auth, "If-Match": '"stale"'}), 412)
    changed = client.patch(f"/notices/{notice_id}", json={"message": "Changed"},
                           headers={**auth, "If-Match": read.headers["ETag"]})
    assert changed.get_json()["message"] == "Changed"
    assert client.delete(f"/notices/{future['id']}", headers=auth).status_code == 204
    assert_problem(client.get(f"/notices/{future['id']}"), 404)


def test_notice_writes_need_a_token(client):
    assert_problem(client.post("/notices", json={"message": "x"}), 401)
