CREATE TABLE "gateway_extras_lists" (
	"organization_id" uuid NOT NULL,
	"plugin_key" uuid NOT NULL,
	"checksum" varchar(64) NOT NULL,
	"extras" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "gateway_extras_lists_organization_id_plugin_key_pk" PRIMARY KEY("organization_id","plugin_key")
);
--> statement-breakpoint
CREATE TABLE "web_sessions" (
	"id_hash" varchar(64) PRIMARY KEY NOT NULL,
	"kind" varchar(8) NOT NULL,
	"key_id" uuid,
	"admin_fingerprint" varchar(64),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "web_sessions_key_idx" ON "web_sessions" USING btree ("key_id");--> statement-breakpoint
CREATE INDEX "web_sessions_expires_idx" ON "web_sessions" USING btree ("expires_at");