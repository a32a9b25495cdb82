CREATE TABLE "gateway_org_settings" (
	"organization_id" uuid PRIMARY KEY NOT NULL,
	"unprefixed_names" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "gateway_tool_lists" (
	"organization_id" uuid NOT NULL,
	"plugin_key" uuid NOT NULL,
	"checksum" varchar(64) NOT NULL,
	"tools" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "gateway_tool_lists_organization_id_plugin_key_pk" PRIMARY KEY("organization_id","plugin_key")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "scopes" jsonb;