-- AlterTable
ALTER TABLE "Backup" ADD COLUMN "identity" TEXT;

-- CreateTable
CREATE TABLE "Run" (
    "projectId" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "jobId" TEXT NOT NULL,
    "clientId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "result" TEXT NOT NULL,
    "exitCode" INTEGER NOT NULL,
    "timeStarted" BIGINT NOT NULL,
    "timeEnded" BIGINT NOT NULL,
    "duration" REAL NOT NULL,
    "bytesRead" BIGINT NOT NULL,
    "bytesStored" BIGINT NOT NULL,
    "rate" REAL NOT NULL,
    "backupId" TEXT NOT NULL DEFAULT '',
    "sessionId" TEXT NOT NULL DEFAULT '',
    "log" TEXT NOT NULL DEFAULT '',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("projectId", "id")
);

-- CreateIndex
CREATE INDEX "Run_projectId_timeStarted_idx" ON "Run"("projectId", "timeStarted");

-- CreateIndex
CREATE INDEX "Run_projectId_jobId_timeStarted_idx" ON "Run"("projectId", "jobId", "timeStarted");

-- CreateIndex
CREATE INDEX "Run_projectId_clientId_timeStarted_idx" ON "Run"("projectId", "clientId", "timeStarted");

-- CreateIndex
CREATE UNIQUE INDEX "Backup_projectId_identity_key" ON "Backup"("projectId", "identity");
