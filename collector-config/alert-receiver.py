"""A stand-in pager for the local stack: prints every Alertmanager webhook notification it receives.

    docker compose logs -f alert-receiver

Replace it with your real receiver (the URL in alertmanager.yml). Standard library only.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            summary = alert.get("annotations", {}).get("summary", "")
            print(f"{alert.get('status')}: {labels.get('alertname')} job={labels.get('job')} {summary}")
        sys.stdout.flush()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
