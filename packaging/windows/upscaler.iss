; Inno Setup 6 script for the Windows installer.  UNTESTED: written without a
; Windows machine; see docs/packaging.md ("Windows") for the steps.
;
; Build the one-folder app first (pyinstaller --noconfirm --clean build.spec on
; Windows gives dist\Upscaler\Upscaler.exe + upscaler-cli.exe), then:
;   for /f %v in ('python packaging\version.py') do iscc /DAppVersion=%v packaging\windows\upscaler.iss
; Output: dist\upscaler-<version>-windows-x64-setup.exe

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z (python packaging\version.py prints it)
#endif
#define AppName "Upscaler"
#define SourceDir "..\..\dist\Upscaler"

[Setup]
; A fixed AppId keeps upgrades and uninstall tied to one entry; never change it.
AppId={{6F1B6C1E-3D0A-4C8E-9B1F-5A2E7C4D9E10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Upscaler developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
OutputDir=..\..\dist
OutputBaseFilename=upscaler-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\Upscaler.exe

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the bundle: old DLLs and an older weights file must not linger.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

; The CLI stays at {app}\upscaler-cli.exe (not added to PATH: a per-user and a
; per-machine install need different registry keys, and this script is untested).
[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\Upscaler.exe"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\Upscaler.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Upscaler.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
