-- CreateTable
CREATE TABLE "Token" (
    "id" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "clientId" TEXT NOT NULL DEFAULT '',
    "userId" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Token_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Backup" (
    "projectId" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "userName" TEXT NOT NULL DEFAULT '',
    "status" TEXT NOT NULL DEFAULT 'available',
    "jobId" TEXT NOT NULL DEFAULT '',
    "timeStamp" BIGINT NOT NULL DEFAULT 0,
    "doc" TEXT NOT NULL,
    "search" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Backup_pkey" PRIMARY KEY ("projectId","id")
);

-- CreateTable
CREATE TABLE "BackupTerm" (
    "projectId" TEXT NOT NULL,
    "backupId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "BackupTerm_pkey" PRIMARY KEY ("projectId","backupId","key","value")
);

-- CreateTable
CREATE TABLE "Client" (
    "projectId" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "isCentral" BOOLEAN NOT NULL DEFAULT false,
    "doc" TEXT NOT NULL,
    "search" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Client_pkey" PRIMARY KEY ("projectId","id")
);

-- CreateTable
CREATE TABLE "ClientTerm" (
    "projectId" TEXT NOT NULL,
    "clientId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "ClientTerm_pkey" PRIMARY KEY ("projectId","clientId","key","value")
);

-- CreateTable
CREATE TABLE "Job" (
    "projectId" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "clientId" TEXT NOT NULL,
    "sessionId" TEXT NOT NULL DEFAULT '',
    "doc" TEXT NOT NULL,
    "search" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Job_pkey" PRIMARY KEY ("projectId","id")
);

-- CreateTable
CREATE TABLE "JobTerm" (
    "projectId" TEXT NOT NULL,
    "jobId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "JobTerm_pkey" PRIMARY KEY ("projectId","jobId","key","value")
);

-- CreateTable
CREATE TABLE "Action" (
    "projectId" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "doc" TEXT NOT NULL,
    "search" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Action_pkey" PRIMARY KEY ("projectId","id")
);

-- CreateTable
CREATE TABLE "ActionTerm" (
    "projectId" TEXT NOT NULL,
    "actionId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "ActionTerm_pkey" PRIMARY KEY ("projectId","actionId","key","value")
);

-- CreateTable
CREATE TABLE "Session" (
    "projectId" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "doc" TEXT NOT NULL,
    "search" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Session_pkey" PRIMARY KEY ("projectId","id")
);

-- CreateTable
CREATE TABLE "SessionTerm" (
    "projectId" TEXT NOT NULL,
    "sessionId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "SessionTerm_pkey" PRIMARY KEY ("projectId","sessionId","key","value")
);

-- CreateIndex
CREATE UNIQUE INDEX "Token_hash_key" ON "Token"("hash");

-- CreateIndex
CREATE INDEX "Token_projectId_idx" ON "Token"("projectId");

-- CreateIndex
CREATE INDEX "Backup_projectId_timeStamp_idx" ON "Backup"("projectId", "timeStamp");

-- CreateIndex
CREATE INDEX "BackupTerm_projectId_key_value_idx" ON "BackupTerm"("projectId", "key", "value");

-- CreateIndex
CREATE INDEX "Client_projectId_createdAt_idx" ON "Client"("projectId", "createdAt");

-- CreateIndex
CREATE INDEX "ClientTerm_projectId_key_value_idx" ON "ClientTerm"("projectId", "key", "value");

-- CreateIndex
CREATE INDEX "Job_projectId_clientId_idx" ON "Job"("projectId", "clientId");

-- CreateIndex
CREATE INDEX "Job_projectId_createdAt_idx" ON "Job"("projectId", "createdAt");

-- CreateIndex
CREATE INDEX "JobTerm_projectId_key_value_idx" ON "JobTerm"("projectId", "key", "value");

-- CreateIndex
CREATE INDEX "Action_projectId_createdAt_idx" ON "Action"("projectId", "createdAt");

-- CreateIndex
CREATE INDEX "ActionTerm_projectId_key_value_idx" ON "ActionTerm"("projectId", "key", "value");

-- CreateIndex
CREATE INDEX "Session_projectId_createdAt_idx" ON "Session"("projectId", "createdAt");

-- CreateIndex
CREATE INDEX "SessionTerm_projectId_key_value_idx" ON "SessionTerm"("projectId", "key", "value");

-- AddForeignKey
ALTER TABLE "BackupTerm" ADD CONSTRAINT "BackupTerm_projectId_backupId_fkey" FOREIGN KEY ("projectId", "backupId") REFERENCES "Backup"("projectId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ClientTerm" ADD CONSTRAINT "ClientTerm_projectId_clientId_fkey" FOREIGN KEY ("projectId", "clientId") REFERENCES "Client"("projectId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobTerm" ADD CONSTRAINT "JobTerm_projectId_jobId_fkey" FOREIGN KEY ("projectId", "jobId") REFERENCES "Job"("projectId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ActionTerm" ADD CONSTRAINT "ActionTerm_projectId_actionId_fkey" FOREIGN KEY ("projectId", "actionId") REFERENCES "Action"("projectId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SessionTerm" ADD CONSTRAINT "SessionTerm_projectId_sessionId_fkey" FOREIGN KEY ("projectId", "sessionId") REFERENCES "Session"("projectId", "id") ON DELETE CASCADE ON UPDATE CASCADE;
