"""The AWS Lambda entry point (text_recognizer.serving.app.lambda_handler) called locally with sample API Gateway proxy
events: REST API (payload 1.0) and HTTP API (payload 2.0), good and bad."""
import base64, io, json

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from text_recognizer.serving import app as service
from text_recognizer.data.paragraphs import make_paragraphs
from text_recognizer.serving.app import MAX_BODY_BYTES, lambda_handler


PAGE = make_paragraphs(1, split="test", seed=6, max_lines=3)  # a synthetic handwritten page
TRUE_LINES = len(PAGE["boxes"][0])


def png_bytes(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes(PAGE["images"][0])
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def rest_event(method="POST", path="/v1/predict", body=None, headers=None, base64_body=False):
    "An API Gateway REST API (payload format 1.0) proxy event."
    return {"resource": "/{proxy+}", "path": path, "httpMethod": method,
            "headers": headers if headers is not None else {"Content-Type": "application/json"},
            "multiValueHeaders": {}, "queryStringParameters": None, "pathParameters": {"proxy": path.lstrip("/")},
            "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "stage": "prod"},
            "body": body, "isBase64Encoded": base64_body}


def http_event(method="POST", path="/v1/predict", body=None, headers=None, base64_body=False):
    "An API Gateway HTTP API (payload format 2.0) proxy event."
    return {"version": "2.0", "routeKey": "ANY /{proxy+}", "rawPath": path, "rawQueryString": "",
            "headers": headers if headers is not None else {"content-type": "application/json"},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "198.51.100.7"}, "stage": "$default"},
            "body": body, "isBase64Encoded": base64_body}


class Context:
    function_name, aws_request_id = "text-recognizer", "c0ffee"


def check_prediction(response):
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["Content-Type"] == "application/json" and response["isBase64Encoded"] is False
    answer = json.loads(response["body"])
    assert set(answer) == {"text", "lines"} and len(answer["lines"]) == TRUE_LINES
    assert answer["text"] == "\n".join(line["text"] for line in answer["lines"])
    for line in answer["lines"]:
        assert len(line["box"]) == 4 and 0 <= line["confidence"] <= 1
    return answer


def check_error(response, status, fragment):
    assert response["statusCode"] == status, response["body"]
    assert response["headers"]["Content-Type"] == "application/json"
    answer = json.loads(response["body"])
    assert set(answer) == {"error"} and fragment in answer["error"], answer


@pytest.fixture(scope="module")
def reference():
    "The answer of the same app through Flask's test client: the handler must give exactly this."
    response = lambda_handler(rest_event(body=json.dumps({"image": DATA_URL})), Context())
    return check_prediction(response)


def test_rest_api_event_with_a_json_body(reference):
    assert service._lambda_app is not None  # created once, reused by later calls
    app = service._lambda_app
    response = lambda_handler(rest_event(body=json.dumps({"image": DATA_URL})), Context())
    assert check_prediction(response) == reference and service._lambda_app is app


def test_http_api_event_with_a_base64_body(reference):
    body = base64.b64encode(json.dumps({"image": DATA_URL}).encode()).decode()
    assert check_prediction(lambda_handler(http_event(body=body, base64_body=True), Context())) == reference


def test_multipart_upload_and_raw_image_bodies(reference):
    upload = FileStorage(io.BytesIO(PNG), filename="page.png", content_type="image/png")
    boundary, data = encode_multipart({"image": upload})
    multipart = http_event(body=base64.b64encode(data).decode(), base64_body=True,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert check_prediction(lambda_handler(multipart, Context())) == reference
    raw = rest_event(body=base64.b64encode(PNG).decode(), base64_body=True, headers={"Content-Type": "image/png"})
    assert check_prediction(lambda_handler(raw, Context())) == reference


def test_dark_ink_on_light_is_read(reference):
    body = json.dumps({"image": base64.b64encode(png_bytes(255 - PAGE["images"][0])).decode()})
    assert check_prediction(lambda_handler(rest_event(body=body), Context()))["text"] == reference["text"]


def test_page_health_and_metrics_routes(reference):
    page = lambda_handler(http_event("GET", "/", headers={}), Context())
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert 'id="pad"' in page["body"] and page["isBase64Encoded"] is False
    script = lambda_handler(rest_event("GET", "/static/app.js", headers={}), Context())
    assert script["statusCode"] == 200 and "v1/predict" in script["body"]
    health = lambda_handler(rest_event("GET", "/healthz", headers={}), Context())
    assert health["statusCode"] == 200 and json.loads(health["body"])["model_loaded"] is True
    metrics = json.loads(lambda_handler(http_event("GET", "/metrics", headers={}), Context())["body"])
    assert metrics["predictions"] >= 1 and metrics["server_errors"] == 0


BAD_EVENTS = {
    "event is a string": ("not an event", 400, "API Gateway proxy event"),
    "event is null": (None, 400, "API Gateway proxy event"),
    "event is a list": ([rest_event()], 400, "API Gateway proxy event"),
    "no method or path": ({"body": "{}"}, 400, "no HTTP method and path"),
    "body is an object": (rest_event(body={"image": DATA_URL}), 400, "body must be a string"),
    "bad base64 body": (http_event(body="%%%not base64%%%", base64_body=True), 400, "isBase64Encoded"),
    "empty body": (rest_event(body=None), 400, "empty"),
    "non-JSON body": (rest_event(body="image=abc"), 400, "not valid JSON"),
    "missing key": (rest_event(body=json.dumps({"img": DATA_URL})), 400, "missing key 'image'"),
    "image is a number": (http_event(body=json.dumps({"image": 7})), 400, "must be a string"),
    "bad base64 image": (rest_event(body=json.dumps({"image": "data:image/png;base64,@@"})), 400, "not valid base64"),
    "truncated PNG": (rest_event(body=json.dumps({"image": base64.b64encode(PNG[:300]).decode()})), 400,
                      "truncated"),
    "not an image": (rest_event(body=json.dumps({"image": base64.b64encode(b"GIF? no").decode()})), 415,
                     "not an image"),
    "image_url": (rest_event(body=json.dumps({"image_url": "http://10.0.0.1/"})), 400, "never fetches"),
    "unsupported content type": (rest_event(body="<x/>", headers={"Content-Type": "application/xml"}), 415,
                                 "unsupported content type"),
    "oversized body": (rest_event(body=" " * (MAX_BODY_BYTES + 1)), 413, "larger than the limit"),
    "unknown path": (http_event("GET", "/v2/predict"), 404, "Not Found"),
    "wrong method": (rest_event("GET", "/v1/predict"), 405, "Method Not Allowed"),
}


@pytest.mark.parametrize("name", BAD_EVENTS)
def test_bad_events_get_4xx_json(name):
    event, status, fragment = BAD_EVENTS[name]
    check_error(lambda_handler(event, Context()), status, fragment)


def test_a_pixel_bomb_is_refused(tmp_path):
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, format="PNG")  # 64 megapixels in a few kB
    event = rest_event(body=base64.b64encode(buffer.getvalue()).decode(), base64_body=True,
                       headers={"Content-Type": "image/png"})
    check_error(lambda_handler(event, Context()), 413, "pixels")
