# server.mk: build/mbrld, and docs/openapi.json embedded into libmbserver.a
# (the daemon serves it at /v1/openapi.json with no runtime file access).
PROGS += $(BUILD)/mbrld

$(BUILD)/mbrld: $(BUILD)/server/main.o $(BUILD)/libmbserver.a $(BUILD)/libmbcore.a
	$(CC) $(CFLAGS) $(BUILD)/server/main.o -o $@ $(LDFLAGS) $(BUILD)/libmbserver.a $(BUILD)/libmbcore.a $(LIBS_SERVER) $(LIBS_CURL) $(LIBS_CORE)

# od + sed: POSIX tools only, no xxd or .incbin
$(BUILD)/gen/openapi_doc.c: docs/openapi.json server/server.mk
	@mkdir -p $(dir $@)
	{ echo '/* generated from docs/openapi.json by server/server.mk: do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const char srv_openapi_json[] = {'; \
	  od -An -v -tx1 docs/openapi.json | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0x00};'; \
	  echo 'const size_t srv_openapi_json_len = sizeof srv_openapi_json - 1;'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/openapi_doc.o: $(BUILD)/gen/openapi_doc.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/libmbserver.a: $(BUILD)/gen/openapi_doc.o

# The status page (GET /ui): server/ui.html, inline script and style, embedded the same way.
$(BUILD)/gen/ui_page.c: server/ui.html server/server.mk
	@mkdir -p $(dir $@)
	{ echo '/* generated from server/ui.html by server/server.mk: do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const char srv_ui_html[] = {'; \
	  od -An -v -tx1 server/ui.html | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0x00};'; \
	  echo 'const size_t srv_ui_html_len = sizeof srv_ui_html - 1;'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/ui_page.o: $(BUILD)/gen/ui_page.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/libmbserver.a: $(BUILD)/gen/ui_page.o
