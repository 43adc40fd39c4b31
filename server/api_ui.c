/* api_ui.c: GET /ui, the status page: server/ui.html (HTML with inline
 * script and style, no external asset), embedded at build time by
 * server/server.mk. The page reads the JSON API and /metrics itself; this
 * handler only serves it.
 * Not for: anything the page shows (the API answers it). */
#include "handlers.h"

extern const char srv_ui_html[];
extern const size_t srv_ui_html_len;

int api_ui(srv_req *q, srv_resp *r, srv_err *e) {
    (void)q, (void)e;
    r->static_text = srv_ui_html;
    r->text_len = srv_ui_html_len;
    r->content_type = "text/html; charset=utf-8";
    return 0;
}
