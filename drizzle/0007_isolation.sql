CREATE TABLE "platform_token_revocations" (
	"organization_id" varchar(64) NOT NULL,
	"plugin_key" varchar(64) NOT NULL,
	"generation" integer NOT NULL,
	"revoked_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "platform_token_revocations_organization_id_plugin_key_pk" PRIMARY KEY("organization_id","plugin_key")
);
--> statement-breakpoint
CREATE TABLE "plugin_version_archives" (
	"version_id" uuid PRIMARY KEY NOT NULL,
	"plugin_key" uuid NOT NULL,
	"checksum" varchar(64) NOT NULL,
	"bytes" integer NOT NULL,
	"archive" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
